# The subgraph's production image. Build: `docker build -t zb-aftersale-subgraph .`
# Run:   `docker run -p 4001:4001 -e ZB_BASE_URL=... -e ZB_USER=... -e ZB_PASSWORD=... zb-aftersale-subgraph`
# test/production-install.test.ts repeats the runtime stage's steps without Docker (no engine runs in CI).

# The current Node LTS for images; the package itself also supports Node 20.19+ (package.json engines).
ARG NODE_VERSION=24

FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM node:${NODE_VERSION}-bookworm-slim AS runtime
ENV NODE_ENV=production PORT=4001
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY schema ./schema
USER node
EXPOSE 4001
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 4001) + '/health/live').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# node itself is PID 1's program (no npm, no shell), so SIGTERM reaches it; the memory flags are npm start's.
CMD ["node", "--max-old-space-size=160", "--max-semi-space-size=16", "--single-threaded-gc", "dist/main.js"]
