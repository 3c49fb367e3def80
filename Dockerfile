# instruct-pt's `ipt` command in a container (the `ipt` service of docker-compose.yml). Node 22 LTS.
FROM node:22-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY . .
# The full install builds dist/ (prepare: tsc) and applies the kafkajs patch (postinstall); the build tools then go.
RUN npm ci --no-audit --no-fund && npm prune --omit=dev && npm cache clean --force
USER node
EXPOSE 8080
ENTRYPOINT ["node", "dist/ops/cli/main.js"]
CMD ["serve", "--with-pipeline", "--host", "0.0.0.0", "--port", "8080"]
