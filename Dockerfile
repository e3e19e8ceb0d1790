# ipernity-connect: the server, with the embedded (SQLite) or the Redis session store.
#   docker build -t ipernity-connect .
#   docker run -p 3000:3000 -v ipernity-data:/data --env-file .env ipernity-connect
# Every stage uses the same Node major, so the native addon (better-sqlite3) built in
# `deps` matches the runtime that loads it.

# --- deps: production dependencies, native addons compiled here ---------------------------
FROM node:24-bookworm-slim AS deps
# better-sqlite3 compiles from source when no prebuilt binary can be fetched
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
# keep the compiled addon, drop the SQLite sources and objects it was built from (~25 MB),
# then make sure it loads
RUN b=node_modules/better-sqlite3 \
 && rm -rf $b/deps $b/src $b/build/deps $b/build/Release/obj $b/build/Release/obj.target \
      $b/build/Release/.deps $b/build/Release/sqlite3.a $b/build/Release/test_extension.node \
 && node -e "new (require('better-sqlite3'))(':memory:').prepare('select 1').get()"

# --- build: compiles the TypeScript into dist/ --------------------------------------------
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# tsc needs the packages and their types, not their install scripts: no native build here
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# --- runtime: dist/, production node_modules, views/, public/, package.json -------------
FROM node:24-bookworm-slim
ENV NODE_ENV=production \
    PORT=3000 \
    DATA_DIR=/data
# V8 sizes its heap for the host's memory, not for this server's ~20 MB of live data: these caps
# (the same as `npm start`'s) keep the resident size well under 160 MB under load (docs/decisions/heap-caps.md)
ENV NODE_OPTIONS="--max-semi-space-size=8 --max-old-space-size=96"
WORKDIR /app
# owned by root and read-only to the app: it writes only to /data
COPY package.json ./
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY views ./views
COPY public ./public
# the SQLite file (DATA_DIR/sessions.sqlite) lives on this volume; a named volume copies
# the folder's owner when first mounted, so the unprivileged user can write to it
RUN mkdir -p /data && chown node:node /data
VOLUME ["/data"]
USER node
EXPOSE 3000
# the slim image has no curl: node's own fetch asks the process whether it answers (itself:
# a redirect, e.g. to PUBLIC_URL, counts as a failure rather than being followed)
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz',{redirect:'manual'}).then(r=>process.exit(r.status===200?0:1),()=>process.exit(1))"]
# node is PID 1 and receives SIGTERM itself (no npm wrapper): it finishes requests in
# flight, closes the session store, then exits
STOPSIGNAL SIGTERM
CMD ["node", "dist/server.js"]
