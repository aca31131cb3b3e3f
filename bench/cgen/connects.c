/*
 * connects: a load generator of authorized Socket.IO connects that costs
 * its machine almost nothing.
 *
 * Why it exists: the Node generator (bench/loadgen.js, socket.io-client)
 * needs about 0.8 of a core for ~1,300 connects/s. On a 2-core machine that
 * leaves the daemon 1.2 cores, so two worker processes can never show what
 * two cores buy (bench/RESULTS.md 20.2). This program speaks just enough of
 * HTTP/1.1, RFC 6455 and Engine.IO v4 / Socket.IO v5 to do what
 * socket.io-client does for one connect, in one thread on epoll, so nearly
 * all of the machine is left to the server under test.
 *
 * One attempt, websocket transport (`-t websocket`):
 *   GET /socket.io/?EIO=4&transport=websocket with the session cookie, 101,
 *   the Engine.IO open packet `0{...}`, send `40` (Socket.IO CONNECT to "/"),
 *   wait for `40{...}` (connected; `44...` is a refusal), then send `41` and
 *   a close frame and wait for the server to close (as the JS client does).
 * Polling then upgrade (`-t polling`), each request on a connection of its
 * own with `Connection: close` (what socket.io-client in Node does with
 * `agent: false`, as loadgen.js runs it):
 *   GET open -> sid; then at once, as engine.io-client does: POST `40`, a
 *   long-poll GET, and the websocket probe (`2probe` -> `3probe`); the
 *   poll in flight is answered (the server's noop `6` at the probe), then
 *   `5` (upgrade) goes over the websocket. Done when both connected (`40{`
 *   seen on either transport) and upgraded; then `41` and close as above.
 *
 * Latency of an attempt: from its first connect() to `40{...}`, like
 * loadgen.js (`connect`); `upgraded` is until the upgrade (polling).
 *
 * usage: connects -p PORT -t websocket|polling -c CONCURRENCY -d SECONDS
 *                 -k COOKIE_FILE [-n COOKIE_NAME] [-h 127.0.0.1]
 * COOKIE_FILE: one session id per line, used round robin.
 * Prints one JSON object: done, rate, errors {reason: count}, latencies,
 * upgraded (milliseconds).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF 8192
#define ATTEMPT_TIMEOUT 30.0
#define CLOSE_TIMEOUT 5.0

enum kind { WS_ONLY, POLL_OPEN, POLL_POST, POLL_GET, WS_PROBE, CLOSING };

struct attempt;

struct conn {
    int fd;
    enum kind kind;
    struct attempt *a;
    char in[BUF];
    int inlen;
    int head_done; /* the HTTP head (or the 101) has been read */
    char out[2048];
    int outlen, outoff;
    int connected_tcp;
    unsigned gen; /* the attempt's generation when this conn was opened */
    double since; /* CLOSING: when it started closing */
    struct conn *next_closing;
    struct conn *next_dead;
};

struct attempt {
    int live;
    unsigned gen; /* slots are reused: a conn of an earlier attempt is stale */
    double started, connected_at, upgraded_at;
    char sid[64];
    const char *cookie;
    struct conn *ws;         /* WS_ONLY or WS_PROBE */
    int requests_in_flight;
    int probe_answered;      /* 3probe received */
    int upgraded;
};

static const char *host = "127.0.0.1";
static int port, polling, concurrency = 50;
static double duration = 10;
static const char *cookie_name = "PHPSESSID";
static char **cookies;
static int ncookies, next_cookie;
static struct sockaddr_in target;
static int ep;
static struct attempt *attempts;
static double *latencies, *upgrades;
static long nlat, caplat, done;
static int accepting = 1;
static struct conn *closing;
static struct conn *dead; /* closed in this batch of events, freed after it */

#define MAX_REASONS 16
static char reasons[MAX_REASONS][48];
static long reason_count[MAX_REASONS];

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void count_error(const char *reason) {
    for (int i = 0; i < MAX_REASONS; i++) {
        if (reason_count[i] && strcmp(reasons[i], reason) == 0) { reason_count[i]++; return; }
        if (!reason_count[i]) {
            snprintf(reasons[i], sizeof reasons[i], "%s", reason);
            reason_count[i] = 1;
            return;
        }
    }
}

static void record(double latency, double upgraded) {
    if (nlat == caplat) {
        caplat = caplat ? caplat * 2 : 65536;
        latencies = realloc(latencies, caplat * sizeof *latencies);
        upgrades = realloc(upgrades, caplat * sizeof *upgrades);
        if (!latencies || !upgrades) { perror("realloc"); exit(1); }
    }
    latencies[nlat] = latency;
    upgrades[nlat++] = upgraded;
    done++;
}

static void watch(struct conn *c, uint32_t events, int op) {
    struct epoll_event ev = {.events = events, .data.ptr = c};
    if (epoll_ctl(ep, op, c->fd, &ev) < 0) { perror("epoll_ctl"); exit(1); }
}

/* Close now, free after the current batch of events (it may still name c). */
static void conn_free(struct conn *c) {
    if (c->fd >= 0) close(c->fd); /* also leaves the epoll set */
    c->fd = -1;
    if (c->kind == CLOSING) return; /* the sweep unlinks and frees it */
    c->next_dead = dead;
    dead = c;
}

static void bury(void) {
    while (dead) {
        struct conn *c = dead;
        dead = c->next_dead;
        free(c);
    }
}

static int current(struct conn *c) {
    return c->a && c->a->live && c->a->gen == c->gen;
}

static void queue_out(struct conn *c, const void *data, int len) {
    if (c->outlen + len > (int)sizeof c->out) { fprintf(stderr, "output overflow\n"); exit(1); }
    memcpy(c->out + c->outlen, data, len);
    c->outlen += len;
}

static void flush_out(struct conn *c) {
    while (c->outoff < c->outlen) {
        ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN) { watch(c, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD); return; }
            return; /* the read side will see the error */
        }
        c->outoff += n;
    }
    c->outlen = c->outoff = 0;
    watch(c, EPOLLIN, EPOLL_CTL_MOD);
}

/* A masked client text (opcode 1) or close (opcode 8) frame. */
static void ws_send(struct conn *c, int opcode, const char *text) {
    unsigned char frame[160];
    int len = strlen(text), n = 0;
    static const unsigned char mask[4] = {0x5a, 0x13, 0xc4, 0x7e};
    if (len > 125) { fprintf(stderr, "frame too long\n"); exit(1); }
    frame[n++] = 0x80 | opcode;
    frame[n++] = 0x80 | len;
    memcpy(frame + n, mask, 4);
    n += 4;
    for (int i = 0; i < len; i++) frame[n++] = text[i] ^ mask[i & 3];
    queue_out(c, frame, n);
    flush_out(c);
}

static struct conn *conn_open(enum kind kind, struct attempt *a, const char *request) {
    struct conn *c = calloc(1, sizeof *c);
    if (!c) { perror("calloc"); exit(1); }
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) { perror("socket"); exit(1); }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->kind = kind;
    c->a = a;
    c->gen = a->gen;
    queue_out(c, request, strlen(request));
    if (connect(c->fd, (struct sockaddr *)&target, sizeof target) < 0 && errno != EINPROGRESS) {
        count_error("connect");
        close(c->fd);
        free(c);
        return NULL;
    }
    watch(c, EPOLLOUT | EPOLLIN, EPOLL_CTL_ADD);
    return c;
}

static void start_closing(struct conn *c) {
    c->kind = CLOSING;
    c->a = NULL;
    c->since = now();
    c->next_closing = closing;
    closing = c;
}

static void http_request(char *out, size_t size, const char *method, const char *query,
                         const char *cookie, const char *body, int upgrade) {
    int n = snprintf(out, size,
                     "%s /socket.io/?EIO=4&%s HTTP/1.1\r\nHost: %s:%d\r\n"
                     "Cookie: %s=%s\r\nAccept: */*\r\n",
                     method, query, host, port, cookie_name, cookie);
    if (upgrade)
        n += snprintf(out + n, size - n,
                      "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                      "Sec-WebSocket-Key: c2Vzc2lvbi1icmlkZ2UhIQ==\r\n\r\n");
    else if (body)
        n += snprintf(out + n, size - n,
                      "Connection: close\r\nContent-Type: text/plain;charset=UTF-8\r\n"
                      "Content-Length: %zu\r\n\r\n%s", strlen(body), body);
    else
        n += snprintf(out + n, size - n, "Connection: close\r\n\r\n");
}

static void attempt_start(struct attempt *a);

static void attempt_end(struct attempt *a, const char *error) {
    if (!a->live) return;
    a->live = 0;
    if (error) count_error(error);
    else record(1000 * (a->connected_at - a->started),
                1000 * ((a->upgraded_at ? a->upgraded_at : a->connected_at) - a->started));
    if (a->ws) {
        if (!error) {
            ws_send(a->ws, 1, "41");
            ws_send(a->ws, 8, "");
            start_closing(a->ws);
        } else {
            conn_free(a->ws);
        }
        a->ws = NULL;
    }
    /* Polls still in flight end on their own (their conns point at nothing live). */
    if (accepting) attempt_start(a);
}

static void poll_get(struct attempt *a) {
    char req[1024], query[160];
    snprintf(query, sizeof query, "transport=polling&sid=%s", a->sid);
    http_request(req, sizeof req, "GET", query, a->cookie, NULL, 0);
    if (conn_open(POLL_GET, a, req)) a->requests_in_flight++;
}

static void maybe_finish(struct attempt *a) {
    if (a->connected_at && (!polling || a->upgraded)) attempt_end(a, NULL);
}

static void upgrade_now(struct attempt *a) {
    ws_send(a->ws, 1, "5");
    a->upgraded = 1;
    a->upgraded_at = now();
    maybe_finish(a);
}

/* One Engine.IO packet (text) for attempt a, from either transport. */
static void packet(struct attempt *a, struct conn *c, const char *p, int len) {
    if (len >= 2 && p[0] == '4' && p[1] == '0') {
        if (!a->connected_at) a->connected_at = now();
        maybe_finish(a);
        return;
    }
    if (len >= 2 && p[0] == '4' && p[1] == '4') { attempt_end(a, "refused"); return; }
    if (len >= 1 && p[0] == '2' && c && c->kind != CLOSING) {
        if (len == 6 && memcmp(p, "2probe", 6) == 0) return;
        ws_send(c, 1, "3"); /* a ping on the websocket: pong */
        return;
    }
    if (len >= 1 && p[0] == '0' && c && c->kind == WS_ONLY) { ws_send(c, 1, "40"); return; }
    if (len == 6 && memcmp(p, "3probe", 6) == 0) {
        a->probe_answered = 1;
        if (!a->requests_in_flight) upgrade_now(a);
        return;
    }
    if (len >= 1 && p[0] == '1') { attempt_end(a, "closed_by_server"); return; }
}

/* Frames from the server (never masked); returns bytes consumed. */
static int ws_frames(struct conn *c) {
    int off = 0;
    while (c->inlen - off >= 2) {
        unsigned char *f = (unsigned char *)c->in + off;
        int opcode = f[0] & 0x0f, hdr = 2;
        uint64_t len = f[1] & 0x7f;
        if (len == 126) {
            if (c->inlen - off < 4) break;
            len = (f[2] << 8) | f[3];
            hdr = 4;
        } else if (len == 127) {
            if (c->inlen - off < 10) break;
            len = 0;
            for (int i = 0; i < 8; i++) len = (len << 8) | f[2 + i];
            hdr = 10;
        }
        if (len > BUF - 16) { if (c->a) attempt_end(c->a, "frame_too_big"); return -1; }
        if ((uint64_t)(c->inlen - off - hdr) < len) break;
        const char *payload = (const char *)f + hdr;
        off += hdr + len;
        if (c->kind == CLOSING || !c->a) continue;
        if (opcode == 8) { attempt_end(c->a, "ws_closed"); return -1; }
        if (opcode == 1) {
            packet(c->a, c, payload, (int)len);
            if (c->kind == CLOSING || !current(c)) return -1; /* ended (maybe restarted) */
        }
    }
    return off;
}

/* The body of a polling response: packets separated by 0x1e. */
static void poll_body(struct conn *c, const char *body, int len) {
    struct attempt *a = c->a;
    if (c->kind == POLL_OPEN) {
        const char *s = memmem(body, len, "\"sid\":\"", 7);
        if (len < 1 || body[0] != '0' || !s) { attempt_end(a, "bad_open"); return; }
        s += 7;
        const char *e = memchr(s, '"', body + len - s);
        if (!e || e - s >= (int)sizeof a->sid) { attempt_end(a, "bad_open"); return; }
        memcpy(a->sid, s, e - s);
        a->sid[e - s] = 0;
        char req[1024], query[160];
        snprintf(query, sizeof query, "transport=polling&sid=%s", a->sid);
        http_request(req, sizeof req, "POST", query, a->cookie, "40", 0);
        if (conn_open(POLL_POST, a, req)) a->requests_in_flight++;
        poll_get(a);
        snprintf(query, sizeof query, "transport=websocket&sid=%s", a->sid);
        http_request(req, sizeof req, "GET", query, a->cookie, NULL, 1);
        a->ws = conn_open(WS_PROBE, a, req);
        if (!a->ws) attempt_end(a, "connect");
        return;
    }
    a->requests_in_flight--;
    if (c->kind == POLL_POST) {
        if (len != 2 || strncasecmp(body, "ok", 2) != 0) { /* "ok"; python-engineio: "OK" */
            if (getenv("CONNECTS_DEBUG")) fprintf(stderr, "POST answered: %.*s\n", c->inlen, c->in);
            attempt_end(a, "bad_post");
            return;
        }
        /* engine.io-client upgrades only once no poll and no write is in flight */
        if (a->probe_answered && !a->requests_in_flight && !a->upgraded) upgrade_now(a);
        return;
    }
    /* POLL_GET */
    int start = 0;
    for (int i = 0; i <= len; i++) {
        if (i == len || body[i] == 0x1e) {
            packet(a, NULL, body + start, i - start);
            if (!current(c)) return;
            start = i + 1;
        }
    }
    if (a->probe_answered) {
        if (!a->requests_in_flight && !a->upgraded) upgrade_now(a);
    } else {
        poll_get(a); /* engine.io-client polls again until the upgrade pauses it */
    }
}

/* Bytes arrived on c; returns 1 when c is to be freed. */
static int on_input(struct conn *c) {
    if (c->kind == CLOSING) return 0;
    if (!c->head_done) {
        char *end = memmem(c->in, c->inlen, "\r\n\r\n", 4);
        if (!end) return 0;
        int status = atoi(c->in + 9);
        int head = end + 4 - c->in;
        if (c->kind == WS_ONLY || c->kind == WS_PROBE) {
            if (status != 101) {
                char reason[32];
                snprintf(reason, sizeof reason, "http_%d", status);
                if (getenv("CONNECTS_DEBUG"))
                    fprintf(stderr, "kind %d answered: %.*s\n", c->kind, c->inlen, c->in);
                if (c->a) { c->a->ws = NULL; attempt_end(c->a, reason); }
                return 1;
            }
            c->head_done = 1;
            memmove(c->in, c->in + head, c->inlen - head);
            c->inlen -= head;
            if (c->kind == WS_PROBE) ws_send(c, 1, "2probe");
        } else {
            if (!current(c)) return 1;
            if (status != 200) {
                char reason[32];
                snprintf(reason, sizeof reason, "http_%d", status);
                if (getenv("CONNECTS_DEBUG"))
                    fprintf(stderr, "kind %d answered: %.*s\n", c->kind, c->inlen, c->in);
                if (c->kind != POLL_OPEN) c->a->requests_in_flight--;
                attempt_end(c->a, reason);
                return 1;
            }
            char *cl = memmem(c->in, head, "Content-Length:", 15);
            if (!cl) cl = memmem(c->in, head, "content-length:", 15);
            if (!cl) return 0; /* read to EOF */
            int length = atoi(cl + 15);
            if (c->inlen - head < length) return 0;
            poll_body(c, c->in + head, length);
            return 1;
        }
    }
    if (!current(c)) return 0;
    int used = ws_frames(c);
    if (used > 0) {
        memmove(c->in, c->in + used, c->inlen - used);
        c->inlen -= used;
    }
    return 0;
}

static void on_eof(struct conn *c) {
    if (c->kind == CLOSING) {
        conn_free(c);
        return;
    }
    struct attempt *a = c->a;
    if (!current(c)) {
        conn_free(c);
        return;
    }
    if (c->kind == POLL_GET || c->kind == POLL_OPEN || c->kind == POLL_POST) {
        /* Body to EOF (no Content-Length). */
        char *end = memmem(c->in, c->inlen, "\r\n\r\n", 4);
        if (end && atoi(c->in + 9) == 200) {
            int head = end + 4 - c->in;
            poll_body(c, c->in + head, c->inlen - head);
        } else {
            if (c->kind != POLL_OPEN) a->requests_in_flight--;
            attempt_end(a, "eof");
        }
    } else {
        if (a->ws == c) a->ws = NULL;
        attempt_end(a, "ws_eof");
    }
    conn_free(c);
}

static void attempt_start(struct attempt *a) {
    char req[1024];
    unsigned gen = a->gen + 1;
    memset(a, 0, sizeof *a);
    a->gen = gen;
    a->live = 1;
    a->cookie = cookies[next_cookie++ % ncookies];
    a->started = now();
    if (polling) {
        http_request(req, sizeof req, "GET", "transport=polling", a->cookie, NULL, 0);
        if (!conn_open(POLL_OPEN, a, req)) a->live = 0;
    } else {
        http_request(req, sizeof req, "GET", "transport=websocket", a->cookie, NULL, 1);
        a->ws = conn_open(WS_ONLY, a, req);
        if (!a->ws) a->live = 0;
    }
}

static void sweep(double t) {
    struct conn **p = &closing;
    while (*p) {
        struct conn *c = *p;
        if (c->fd < 0 || t - c->since > CLOSE_TIMEOUT) {
            *p = c->next_closing;
            if (c->fd >= 0) close(c->fd);
            free(c);
        } else {
            p = &c->next_closing;
        }
    }
    for (int i = 0; i < concurrency; i++) {
        struct attempt *a = &attempts[i];
        if (a->live && t - a->started > ATTEMPT_TIMEOUT) {
            if (a->ws) { conn_free(a->ws); a->ws = NULL; }
            attempt_end(a, "timeout");
        }
    }
}

static void read_cookies(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) { perror(path); exit(2); }
    char line[256];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        if (!*line) continue;
        cookies = realloc(cookies, (ncookies + 1) * sizeof *cookies);
        cookies[ncookies++] = strdup(line);
    }
    fclose(f);
    if (!ncookies) { fprintf(stderr, "%s: no session ids\n", path); exit(2); }
}

int main(int argc, char **argv) {
    int opt;
    const char *cookie_file = NULL;
    while ((opt = getopt(argc, argv, "h:p:t:c:d:k:n:")) != -1) {
        switch (opt) {
        case 'h': host = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 't': polling = strcmp(optarg, "polling") == 0; break;
        case 'c': concurrency = atoi(optarg); break;
        case 'd': duration = atof(optarg); break;
        case 'k': cookie_file = optarg; break;
        case 'n': cookie_name = optarg; break;
        default:
            fprintf(stderr, "usage: %s -p PORT -t websocket|polling -c N -d SECONDS -k FILE\n",
                    argv[0]);
            return 2;
        }
    }
    if (!port || !cookie_file || concurrency < 1) {
        fprintf(stderr, "-p PORT and -k COOKIE_FILE are required\n");
        return 2;
    }
    read_cookies(cookie_file);
    target.sin_family = AF_INET;
    target.sin_port = htons(port);
    if (inet_pton(AF_INET, host, &target.sin_addr) != 1) { fprintf(stderr, "bad host\n"); return 2; }
    ep = epoll_create1(EPOLL_CLOEXEC);
    attempts = calloc(concurrency, sizeof *attempts);
    double begin = now(), last_sweep = begin;
    for (int i = 0; i < concurrency; i++) attempt_start(&attempts[i]);
    struct epoll_event events[256];
    for (;;) {
        double t = now();
        if (accepting && t - begin >= duration) accepting = 0;
        if (t - last_sweep > 0.1) { sweep(t); last_sweep = t; }
        if (!accepting) {
            int live = 0;
            for (int i = 0; i < concurrency; i++) live += attempts[i].live;
            if (!live) break;
            if (t - begin > duration + ATTEMPT_TIMEOUT + 1) break;
        }
        int n = epoll_wait(ep, events, 256, 50);
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            if (c->fd < 0) continue; /* closed earlier in this batch */
            if (events[i].events & EPOLLOUT) {
                if (!c->connected_tcp) {
                    int err = 0;
                    socklen_t len = sizeof err;
                    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
                    c->connected_tcp = 1;
                    if (err) { on_eof(c); continue; }
                }
                flush_out(c);
            }
            if (c->fd < 0) continue;
            if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                ssize_t got = recv(c->fd, c->in + c->inlen, BUF - c->inlen, 0);
                if (got > 0) {
                    c->inlen += got;
                    if (c->kind == CLOSING) c->inlen = 0;
                    else if (on_input(c)) { conn_free(c); continue; }
                    if (c->fd >= 0 && c->inlen == BUF) {
                        if (current(c)) attempt_end(c->a, "overflow");
                        conn_free(c);
                    }
                } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
                    on_eof(c);
                }
            }
        }
        bury();
    }
    double elapsed = now() - begin;
    printf("{\"done\": %ld, \"seconds\": %.3f, \"rate\": %.1f, \"errors\": {", done, elapsed,
           done / (elapsed < duration ? duration : elapsed));
    for (int i = 0, first = 1; i < MAX_REASONS && reason_count[i]; i++, first = 0)
        printf("%s\"%s\": %ld", first ? "" : ", ", reasons[i], reason_count[i]);
    printf("}, \"latencies\": [");
    for (long i = 0; i < nlat; i++) printf("%s%.3f", i ? "," : "", latencies[i]);
    printf("], \"upgraded\": [");
    for (long i = 0; i < nlat; i++) printf("%s%.3f", i ? "," : "", upgrades[i]);
    printf("]}\n");
    return 0;
}
