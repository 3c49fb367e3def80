# instruct-pt's `ipt` command in a container (the `ipt` service of docker-compose.yml). Node 22 LTS.
FROM node:22-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY . .
# The full install (`npm install` with the committed lock, as .ci/run does) builds dist/ (prepare: tsc) and applies
# the kafkajs patch (postinstall); it needs the development dependencies (NODE_ENV=production leaves them out), which
# then go.
RUN npm install --include=dev --no-audit --no-fund && npm prune --omit=dev && npm cache clean --force
USER node
EXPOSE 8080
ENTRYPOINT ["node", "--max-semi-space-size=64", "dist/ops/cli/main.js"]
CMD ["serve", "--with-pipeline", "--host", "0.0.0.0", "--port", "8080"]
