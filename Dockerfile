# pinflow worker and HTTP API image.
#
#   docker build -t pinflow .
#   docker run pinflow                                   # worker (default)
#   docker run -p 8080:8080 pinflow node dist/app/api-main.js   # HTTP API
#
# Used by docker-compose.temporal.yml for both the pinflow-worker and
# pinflow-api services.

# ---- build stage -----------------------------------------------------------
FROM node:20-bookworm-slim AS builder
WORKDIR /app

COPY package.json package-lock.json ./
RUN npm ci

COPY tsconfig.json ./
COPY graph ./graph
COPY workflows ./workflows
COPY activities ./activities
COPY worker ./worker
COPY client ./client
COPY projection ./projection
COPY observability ./observability
COPY db ./db
COPY rpc ./rpc
COPY codec ./codec
COPY catalog ./catalog
COPY app ./app
COPY cli ./cli
COPY index.ts ./index.ts
COPY scripts ./scripts
COPY examples ./examples
COPY migrations ./migrations
COPY test ./test

# tsc, then prebuild the workflow bundle into dist/workflow-bundle.js so the
# worker never bundles at start.
RUN npm run build \
 && npm prune --omit=dev

# ---- runtime stage ---------------------------------------------------------
FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production

COPY --from=builder --chown=node:node /app/package.json ./package.json
COPY --from=builder --chown=node:node /app/node_modules ./node_modules
COPY --from=builder --chown=node:node /app/dist ./dist
COPY --from=builder --chown=node:node /app/migrations ./migrations

USER node

CMD ["node", "dist/app/worker-main.js"]
