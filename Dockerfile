# phasebench as a container: `docker compose` runs the flagship, the admin API and (with live
# mode) the engine, fleet and driver services from this one image.
#   docker build -t phasebench:local .
#   docker run --rm phasebench:local run scenarios/flagship.ts
FROM node:20-bookworm-slim

WORKDIR /app
ENV NODE_ENV=production \
    NPM_CONFIG_UPDATE_NOTIFIER=false

# Dependencies first, so a source change does not reinstall them. Scenario files are TypeScript
# and run under tsx, a runtime dependency; dev dependencies (test, lint, dashboard generator) stay out.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

COPY bin ./bin
COPY harness ./harness
COPY scenarios ./scenarios
COPY tsconfig.json ./

# Root in the container: the flagship writes into ./results bind-mounted from the host, whose
# owner is not known here. Nothing listens on a privileged port.
ENTRYPOINT ["node", "bin/phasebench.js"]
CMD ["--help"]
