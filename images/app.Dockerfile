# Example app image: a Next.js `output: 'standalone'` app on the knext-launch base layer, with the
# compile cache baked in by `knext-launch --prewarm`. Build from the app's directory:
#   docker build -f app.Dockerfile --build-arg BASE_IMAGE=registry.example.com/knext-node:24 \
#     -t registry.example.com/my-next-app:1.0.0 .
# next.config.js needs `output: 'standalone'`.
ARG NODE_IMAGE=node:24-bookworm-slim
ARG BASE_IMAGE=registry.example.com/knext-node:24

FROM ${NODE_IMAGE} AS build
WORKDIR /src
ENV NEXT_TELEMETRY_DISABLED=1
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build

FROM ${BASE_IMAGE}
# The routes the first users hit: warmed at every start before the port opens, and baked below.
ARG KNEXT_WARM_PATHS=/
ENV NODE_ENV=production \
    NEXT_TELEMETRY_DISABLED=1 \
    HOSTNAME=0.0.0.0 \
    KNEXT_WARM_PATHS=${KNEXT_WARM_PATHS} \
    KNEXT_CACHE_SEED=/app/.knext-cache
WORKDIR /app
# The app's files stay root's: the app user may write only what the bake writes (.next's two
# prewarm lists and the seed), and at run time nothing (read-only root filesystem).
COPY --from=build /src/.next/standalone ./
COPY --from=build /src/.next/static ./.next/static
COPY --from=build /src/public ./public
RUN chown 1000:1000 /app/.next && install -d -o 1000 -g 1000 -m 0700 /app/.knext-cache
# Numeric, so Kubernetes' runAsNonRoot can verify it. The bake must run as the runtime uid (node
# keys its cache directory by uid) and at the runtime paths (V8 keys entries by file name).
USER 1000:1000
RUN knext-launch --prewarm --cache-seed /app/.knext-cache
EXPOSE 8080
