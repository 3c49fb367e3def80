# instruct-pt's `ipt` command in a container (the `ipt` service of docker-compose.yml). Node 22 LTS.
FROM node:22-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
COPY patches ./patches
RUN npm install --omit=dev --no-audit --no-fund && npm cache clean --force
COPY . .
USER node
EXPOSE 8080
ENTRYPOINT ["node", "ops/cli/bin.js"]
CMD ["serve", "--with-pipeline", "--host", "0.0.0.0", "--port", "8080"]
