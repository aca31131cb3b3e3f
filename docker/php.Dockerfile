# syntax=docker/dockerfile:1
# The PHP demo site: Apache + mod_php on Debian bookworm, the same PHP stack
# as the development machines (PHP 8.2, php-predis, php-redis).
# Build context is the repository root:
#   docker build -f docker/php.Dockerfile -t session-bridge-php .

# The browser's Socket.IO client, installed from npm (what php-demo/setup.sh does).
FROM node:20-bookworm-slim AS assets
WORKDIR /build
COPY php-demo/package*.json ./
RUN npm install --no-audit --no-fund --omit=dev

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        apache2 libapache2-mod-php php-predis php-redis php-igbinary \
 && rm -rf /var/lib/apt/lists/* \
 && ln -sfT /dev/stderr /var/log/apache2/error.log \
 && ln -sfT /dev/stdout /var/log/apache2/access.log \
 && ln -sfT /dev/stdout /var/log/apache2/other_vhosts_access.log
COPY docker/php-demo.apache.conf /etc/apache2/sites-available/000-default.conf

COPY php-demo/ /srv/php-demo/
COPY clients/php/ /srv/clients/php/
COPY --from=assets /build/node_modules/socket.io-client/dist/socket.io.min.js /srv/php-demo/public/vendor/

# Read by php-demo/src/bootstrap.php with getenv(); compose.yaml sets the rest.
ENV DEMO_REDIS=tcp://redis:6379

EXPOSE 80
# Apache's graceful stop.
STOPSIGNAL SIGWINCH
CMD ["apache2ctl", "-D", "FOREGROUND"]
