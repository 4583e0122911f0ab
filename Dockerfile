# pinflow's container image: the npm package this repository packs, installed
# with its production dependencies. It holds the `pinflow` CLI (on PATH), the
# worker and the HTTP API, the prebuilt workflow bundle, the console and the
# migrations; no tests, no benchmarks, no sources.
#
#   docker build -t pinflow .                       # the production image (the last stage)
#   docker run pinflow                              # the worker (the default command)
#   docker run -p 8080:8080 pinflow node node_modules/pinflow/dist/app/api-main.js   # the HTTP API
#   docker run pinflow pinflow --help               # the CLI
#
# Your RPCs go in an image of your own on top of this one (README, "Production stack"):
#
#   FROM pinflow
#   COPY rpcs/ /app/rpcs/                           # compiled JavaScript; `require('pinflow')` resolves here
#   ENV PINFLOW_RPC_MODULE=/app/rpcs/index.js
#
# The `demo` stage adds the order-fulfilment example's RPCs for
# docker-compose.temporal.yml, which builds that stage.

# ---- build: compile, prebuild the workflow bundle, pack --------------------
FROM node:20-bookworm-slim AS builder
WORKDIR /src

COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund

# The whole repository (less .dockerignore): `npm run build` compiles every
# folder tsconfig.json names, tests included, but only what `npm pack` ships
# (package.json "files") reaches the image.
COPY . .

# tsc, the workflow bundle (dist/workflow-bundle.js) and the console, then the
# tarball, and the npm project the image installs it into (package.json with
# the peers at the lock file's versions, seeded with the lock file:
# scripts/image-project.ts). test/package.test.ts runs these same steps.
RUN npm run build \
 && mkdir /image \
 && npm pack --ignore-scripts --pack-destination /image \
 && node dist/scripts/image-project.js /image

# ---- the production image ----------------------------------------------------
FROM node:20-bookworm-slim AS pinflow
ENV NODE_ENV=production
WORKDIR /app

COPY --from=builder /image/ /app/
RUN npm install --omit=dev --no-audit --no-fund \
 && npm cache clean --force

# `pinflow` (the package's bin) on PATH; the files stay root's, the process runs as node.
ENV PATH=/app/node_modules/.bin:$PATH
USER node

CMD ["node", "node_modules/pinflow/dist/app/worker-main.js"]

# ---- demo: the production image plus the example RPCs ------------------------
# The example is compiled against the library's own modules, so it sits beside
# them in the installed package (it is not part of the npm package).
FROM pinflow AS demo
COPY --from=builder /src/dist/examples/order-fulfilment/ /app/node_modules/pinflow/dist/examples/order-fulfilment/
ENV PINFLOW_RPC_MODULE=/app/node_modules/pinflow/dist/examples/order-fulfilment/rpcs.js

# The default target: the production image, without the example.
FROM pinflow
