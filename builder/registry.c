/* builder/registry.c: Distribution API v2 client over libcurl; see
 * registry.h for the contract (transport, auth, retries, verification). */
#include "registry.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "ref.h"

#define MAX_CHALLENGES 4
#define ERRBODY_MAX 2048

/* Invariants: host/repo/domain are set; scheme is NULL until a request got
 * an HTTP answer, then "http" or "https" for the client's life; auth_header
 * (under lock) is the Authorization line to send, NULL while anonymous, and
 * auth_gen counts its changes. */
struct registry {
    char *domain;
    const char *host;
    char *repo;
    bool insecure;
    pthread_mutex_t lock;
    const char *scheme;
    char *auth_header;
    unsigned auth_gen;
};

/* One transfer: the final response's headers and the body sink. `offset`
 * bytes have been accepted into the sink and hashed into `sha`. */
struct xfer {
    CURL *h;
    struct registry *r;
    const char *what;              /* "manifest `latest`", "blob `sha256:...`" */
    long status;
    char *content_type, *docker_digest, *content_range;
    char *challenges[MAX_CHALLENGES];
    int nchallenges;
    bool started, is_data, too_large, bad_range, cancelled;
    int write_errno;
    /* sink: memory (fd < 0) or file */
    char *mem;
    size_t mem_cap, mem_max;
    int fd;
    const char *path;
    EVP_MD_CTX *sha;
    uint64_t offset;
    int64_t expect;
    char errbody[ERRBODY_MAX];
    size_t errlen;
    registry_progress_fn progress;
    void *arg;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

char *registry_digest_of(const void *data, size_t len)
{
    unsigned char md[32];
    char *s = malloc(7 + 64 + 1);
    if (s == NULL || EVP_Digest(data, len, md, NULL, EVP_sha256(), NULL) != 1) {
        free(s);
        return NULL;
    }
    strcpy(s, "sha256:");
    for (int i = 0; i < 32; i++)
        sprintf(s + 7 + 2 * i, "%02x", md[i]);
    return s;
}

static void sha_hex(EVP_MD_CTX *ctx, char out[7 + 64 + 1])
{
    unsigned char md[32];
    EVP_MD_CTX *copy = EVP_MD_CTX_new();
    unsigned n = 0;
    EVP_MD_CTX_copy_ex(copy, ctx);
    EVP_DigestFinal_ex(copy, md, &n);
    EVP_MD_CTX_free(copy);
    strcpy(out, "sha256:");
    for (int i = 0; i < 32; i++)
        sprintf(out + 7 + 2 * i, "%02x", md[i]);
}

static bool host_listed(const char *host, const char *const *list, const char *env)
{
    for (size_t i = 0; list && list[i]; i++)
        if (strcasecmp(list[i], host) == 0)
            return true;
    if (env) {
        cleanup_free char *copy = strdup(env);
        char *save = NULL;
        for (char *t = copy ? strtok_r(copy, ", ", &save) : NULL; t; t = strtok_r(NULL, ", ", &save))
            if (strcasecmp(t, host) == 0)
                return true;
    }
    return false;
}

int registry_open(const char *domain, const char *repository, const char *const *insecure,
                  struct registry **out, hypr_error_t *err)
{
    struct registry *r = calloc(1, sizeof(*r));
    pthread_once(&curl_once, curl_init_once);
    if (r == NULL)
        return hypr_error_make(err, ENOMEM, "registry `%s`", domain);
    r->domain = strdup(domain);
    r->repo = strdup(repository);
    if (r->domain == NULL || r->repo == NULL) {
        registry_close(r);
        return hypr_error_make(err, ENOMEM, "registry `%s`", domain);
    }
    r->host = ref_registry_host(r->domain);
    r->insecure = ref_domain_is_loopback(r->domain) ||
                  host_listed(r->domain, insecure, getenv("HYPR_INSECURE_REGISTRIES"));
    pthread_mutex_init(&r->lock, NULL);
    *out = r;
    return 0;
}

void registry_close(struct registry *r)
{
    if (r == NULL)
        return;
    if (r->auth_header)
        explicit_bzero(r->auth_header, strlen(r->auth_header));
    free(r->auth_header);
    free(r->domain);
    free(r->repo);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

const char *registry_scheme(const struct registry *r)
{
    return r->scheme;
}

static void xfer_reset_headers(struct xfer *x)
{
    free(x->content_type);
    free(x->docker_digest);
    free(x->content_range);
    x->content_type = x->docker_digest = x->content_range = NULL;
    for (int i = 0; i < x->nchallenges; i++)
        free(x->challenges[i]);
    x->nchallenges = 0;
}

static void xfer_free(struct xfer *x)
{
    xfer_reset_headers(x);
    if (x->h)
        curl_easy_cleanup(x->h);
    if (x->sha)
        EVP_MD_CTX_free(x->sha);
    free(x->mem);
}

static char *trimmed(const char *p, size_t n)
{
    while (n && (*p == ' ' || *p == '\t'))
        p++, n--;
    while (n && (p[n - 1] == '\r' || p[n - 1] == '\n' || p[n - 1] == ' '))
        n--;
    return strndup(p, n);
}

static size_t on_header(char *p, size_t sz, size_t nmemb, void *ud)
{
    struct xfer *x = ud;
    size_t n = sz * nmemb;
    if (n >= 5 && strncmp(p, "HTTP/", 5) == 0) {
        xfer_reset_headers(x);
        return n;
    }
    const char *colon = memchr(p, ':', n);
    if (colon == NULL)
        return n;
    size_t klen = (size_t)(colon - p), vlen = n - klen - 1;
    const char *v = colon + 1;
#define IS(name) (klen == sizeof(name) - 1 && strncasecmp(p, name, klen) == 0)
    if (IS("content-type")) {
        free(x->content_type);
        x->content_type = trimmed(v, vlen);
        if (x->content_type)
            x->content_type[strcspn(x->content_type, "; ")] = 0;
    } else if (IS("docker-content-digest")) {
        free(x->docker_digest);
        x->docker_digest = trimmed(v, vlen);
    } else if (IS("content-range")) {
        free(x->content_range);
        x->content_range = trimmed(v, vlen);
    } else if (IS("www-authenticate") && x->nchallenges < MAX_CHALLENGES) {
        x->challenges[x->nchallenges] = trimmed(v, vlen);
        if (x->challenges[x->nchallenges])
            x->nchallenges++;
    }
#undef IS
    return n;
}

/* Restarts the sink at offset 0 (the server ignored a Range request). */
static int sink_restart(struct xfer *x)
{
    x->offset = 0;
    EVP_DigestInit_ex(x->sha, EVP_sha256(), NULL);
    if (x->fd >= 0 && (ftruncate(x->fd, 0) < 0 || lseek(x->fd, 0, SEEK_SET) < 0)) {
        x->write_errno = errno;
        return -1;
    }
    return 0;
}

static size_t on_body(char *p, size_t sz, size_t nmemb, void *ud)
{
    struct xfer *x = ud;
    size_t n = sz * nmemb;
    if (!x->started) {
        x->started = true;
        curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &x->status);
        x->is_data = x->status == 200 || x->status == 206;
        if (x->status == 200 && x->offset > 0 && sink_restart(x) < 0)
            return 0;
        if (x->status == 206) {
            unsigned long long start;
            if (x->content_range == NULL || sscanf(x->content_range, "bytes %llu-", &start) != 1 ||
                start != x->offset) {
                x->bad_range = true;
                return 0;
            }
        }
    }
    if (!x->is_data) {
        size_t room = sizeof(x->errbody) - 1 - x->errlen, k = n < room ? n : room;
        memcpy(x->errbody + x->errlen, p, k);
        x->errlen += k;
        x->errbody[x->errlen] = 0;
        return n;
    }
    if ((x->expect >= 0 && x->offset + n > (uint64_t)x->expect) || (x->fd < 0 && x->offset + n > x->mem_max)) {
        x->too_large = true;
        return 0;
    }
    if (x->fd >= 0) {
        for (size_t done = 0; done < n;) {
            ssize_t w = write(x->fd, p + done, n - done);
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                x->write_errno = errno;
                return 0;
            }
            done += (size_t)w;
        }
    } else {
        if (x->offset + n + 1 > x->mem_cap) {
            size_t cap = (x->offset + n + 1) * 2;
            char *m = realloc(x->mem, cap);
            if (m == NULL) {
                x->write_errno = ENOMEM;
                return 0;
            }
            x->mem = m;
            x->mem_cap = cap;
        }
        memcpy(x->mem + x->offset, p, n);
        x->mem[x->offset + n] = 0;
    }
    EVP_DigestUpdate(x->sha, p, n);
    x->offset += n;
    if (x->progress && x->progress(x->arg, x->offset, x->expect > 0 ? (uint64_t)x->expect : 0) != 0) {
        x->cancelled = true;
        return 0;
    }
    return n;
}

/* "HTTP 404: manifest unknown (MANIFEST_UNKNOWN)" from the registry's error body. */
static char *describe_status(const struct xfer *x)
{
    char *s = NULL, *detail = NULL;
    json_t *j = x->errlen ? json_loadb(x->errbody, x->errlen, 0, NULL) : NULL;
    json_t *e0 = json_array_get(json_object_get(j, "errors"), 0);
    const char *msg = json_string_value(json_object_get(e0, "message"));
    const char *code = json_string_value(json_object_get(e0, "code"));
    if (msg && code) {
        if (asprintf(&detail, ": %s (%s)", msg, code) < 0)
            detail = NULL;
    } else if (x->errlen && !j) {
        size_t n = strcspn(x->errbody, "\r\n");
        if (asprintf(&detail, ": %.*s", (int)(n > 200 ? 200 : n), x->errbody) < 0)
            detail = NULL;
    }
    json_decref(j);
    if (asprintf(&s, "HTTP %ld%s", x->status, detail ? detail : "") < 0)
        s = NULL;
    free(detail);
    return s;
}

static bool retryable(CURLcode cc)
{
    switch (cc) {
    case CURLE_COULDNT_CONNECT: case CURLE_PARTIAL_FILE: case CURLE_RECV_ERROR: case CURLE_SEND_ERROR:
    case CURLE_OPERATION_TIMEDOUT: case CURLE_GOT_NOTHING: case CURLE_HTTP2: case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR: case CURLE_COULDNT_RESOLVE_HOST:
        return true;
    default:
        return false;
    }
}

static void backoff(int attempt)
{
    long ms = 250L << (attempt - 1);
    if (ms > 4000)
        ms = 4000;
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Common curl options; `scheme` decides redirect protocols and TLS checks. */
static void setup_handle(struct registry *r, CURL *h, const char *scheme, char *errbuf)
{
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "hypr/0.1");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, strcmp(scheme, "https") == 0 ? "https" : "http,https");
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    if (r->insecure && strcmp(scheme, "https") == 0) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (ref_domain_is_loopback(r->domain))
        curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
}

/* Fetches a bearer token for the challenge into r->auth_header. */
static int fetch_token(struct registry *r, const struct auth_challenge *ch, hypr_error_t *err)
{
    struct auth_creds creds = { 0 };
    cleanup_free char *scope = NULL, *url = NULL, *cfg = auth_config_path();
    char errbuf[CURL_ERROR_SIZE] = "";
    struct xfer x = { .fd = -1, .expect = -1, .mem_max = 1u << 20 };
    int ret = -1, found;

    if (ch->realm == NULL || (strncmp(ch->realm, "https://", 8) != 0 && strncmp(ch->realm, "http://", 7) != 0))
        return hypr_error_make(err, 0, "registry `%s`: bearer challenge without an http(s) realm", r->domain);
    if (strncmp(ch->realm, "http://", 7) == 0) {
        /* plain HTTP token server: only where plain HTTP is allowed at all */
        cleanup_free char *rhost = strndup(ch->realm + 7, strcspn(ch->realm + 7, "/?#"));
        if (rhost == NULL || !(ref_domain_is_loopback(rhost) || r->insecure))
            return hypr_error_make(err, 0, "registry `%s`: token realm `%s` is plain HTTP", r->domain, ch->realm);
    }
    found = auth_lookup(r->domain, &creds, err);
    if (found < 0)
        return -1;
    x.h = curl_easy_init();
    x.sha = EVP_MD_CTX_new();
    if (x.h == NULL || x.sha == NULL) {
        xfer_free(&x);
        auth_creds_free(&creds);
        return hypr_error_make(err, ENOMEM, "registry `%s`: token request", r->domain);
    }
    if (ch->scope)
        scope = strdup(ch->scope);
    else if (asprintf(&scope, "repository:%s:pull", r->repo) < 0)
        scope = NULL;
    char *esc_service = curl_easy_escape(x.h, ch->service ? ch->service : "", 0);
    char *esc_scope = curl_easy_escape(x.h, scope ? scope : "", 0);
    if (asprintf(&url, "%s%cservice=%s&scope=%s", ch->realm, strchr(ch->realm, '?') ? '&' : '?',
                 esc_service ? esc_service : "", esc_scope ? esc_scope : "") < 0)
        url = NULL;
    curl_free(esc_service);
    curl_free(esc_scope);
    setup_handle(r, x.h, strncmp(ch->realm, "https", 5) == 0 ? "https" : "http", errbuf);
    curl_easy_setopt(x.h, CURLOPT_URL, url);
    curl_easy_setopt(x.h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(x.h, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(x.h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(x.h, CURLOPT_HEADERDATA, &x);
    if (found) {
        curl_easy_setopt(x.h, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
        curl_easy_setopt(x.h, CURLOPT_USERNAME, creds.user);
        curl_easy_setopt(x.h, CURLOPT_PASSWORD, creds.pass);
    }
    for (int attempt = 1;; attempt++) {
        x.started = false;
        x.offset = 0;
        x.errlen = 0;
        EVP_DigestInit_ex(x.sha, EVP_sha256(), NULL);
        CURLcode cc = curl_easy_perform(x.h);
        if (cc == CURLE_OK && (x.status == 429 || x.status >= 500) && attempt < REGISTRY_ATTEMPTS) {
            backoff(attempt);
            continue;
        }
        if (cc != CURLE_OK && retryable(cc) && attempt < REGISTRY_ATTEMPTS) {
            backoff(attempt);
            continue;
        }
        if (cc != CURLE_OK) {
            hypr_error_make(err, 0, "registry `%s`: token server `%s`: %s", r->domain, ch->realm,
                            *errbuf ? errbuf : curl_easy_strerror(cc));
            break;
        }
        if (x.status != 200) {
            cleanup_free char *st = describe_status(&x);
            hypr_error_make(err, 0, "registry `%s`: token server `%s`: %s (%s%s%s)", r->domain, ch->realm,
                            st ? st : "error", found ? "as user `" : "anonymously, no credentials in `",
                            found ? creds.user : (cfg ? cfg : "~/.docker/config.json"), "`");
            break;
        }
        json_t *j = json_loadb(x.mem ? x.mem : "", x.offset, 0, NULL);
        const char *tok = json_string_value(json_object_get(j, "token"));
        if (tok == NULL || *tok == 0)
            tok = json_string_value(json_object_get(j, "access_token"));
        if (tok == NULL || *tok == 0) {
            json_decref(j);
            hypr_error_make(err, 0, "registry `%s`: token server `%s`: no token in its answer", r->domain, ch->realm);
            break;
        }
        char *hdr;
        if (asprintf(&hdr, "Authorization: Bearer %s", tok) < 0) {
            json_decref(j);
            hypr_error_make(err, ENOMEM, "registry `%s`: token", r->domain);
            break;
        }
        json_decref(j);
        free(r->auth_header);
        r->auth_header = hdr;
        r->auth_gen++;
        ret = 0;
        break;
    }
    if (x.mem)
        explicit_bzero(x.mem, x.mem_cap);
    xfer_free(&x);
    auth_creds_free(&creds);
    return ret;
}

/* Answers a 401: picks the Bearer challenge (else Basic) and sets
 * r->auth_header, unless another thread already changed it since `gen`. */
static int handle_401(struct registry *r, struct xfer *x, unsigned gen, hypr_error_t *err)
{
    struct auth_challenge ch = { 0 }, cand;
    int ret = 0;
    pthread_mutex_lock(&r->lock);
    if (r->auth_gen != gen)
        goto out;
    for (int i = 0; i < x->nchallenges; i++) {
        hypr_error_t perr = NULL;
        if (auth_parse_challenge(x->challenges[i], &cand, &perr) < 0) {
            hypr_error_free(&perr);
            continue;
        }
        if (ch.scheme == NULL || (strcasecmp(cand.scheme, "bearer") == 0 && strcasecmp(ch.scheme, "bearer") != 0)) {
            auth_challenge_free(&ch);
            ch = cand;
        } else {
            auth_challenge_free(&cand);
        }
    }
    if (ch.scheme == NULL) {
        ret = hypr_error_make(err, 0, "registry `%s`: %s: HTTP 401 without a usable WWW-Authenticate challenge",
                              r->domain, x->what);
    } else if (strcasecmp(ch.scheme, "bearer") == 0) {
        ret = fetch_token(r, &ch, err);
    } else if (strcasecmp(ch.scheme, "basic") == 0) {
        struct auth_creds creds = { 0 };
        int found = auth_lookup(r->domain, &creds, err);
        if (found == 0) {
            cleanup_free char *cfg = auth_config_path();
            ret = hypr_error_make(err, 0,
                                  "registry `%s` requires authentication (basic) and `%s` has no credentials for it",
                                  r->domain, cfg ? cfg : "~/.docker/config.json");
        } else if (found > 0) {
            cleanup_free char *up = NULL, *b64 = NULL;
            char *hdr = NULL;
            if (asprintf(&up, "%s:%s", creds.user, creds.pass) >= 0)
                b64 = auth_base64_encode(up, strlen(up));
            if (b64 == NULL || asprintf(&hdr, "Authorization: Basic %s", b64) < 0) {
                ret = hypr_error_make(err, ENOMEM, "registry `%s`: credentials", r->domain);
            } else {
                free(r->auth_header);
                r->auth_header = hdr;
                r->auth_gen++;
            }
            if (up)
                explicit_bzero(up, strlen(up));
        } else {
            ret = -1;
        }
        auth_creds_free(&creds);
    } else {
        ret = hypr_error_make(err, 0, "registry `%s`: unsupported authentication scheme `%s`", r->domain, ch.scheme);
    }
out:
    pthread_mutex_unlock(&r->lock);
    auth_challenge_free(&ch);
    return ret;
}

/* GETs /v2/<repo>/<kind>/<ref> into the xfer's sink with scheme selection,
 * auth, retries and resume. On success the sink holds the whole body. */
static int request(struct registry *r, struct xfer *x, const char *kind, const char *ref, const char *accept,
                   hypr_error_t *err)
{
    char errbuf[CURL_ERROR_SIZE];
    bool auth_retried = false, fell_back = false;
    for (int attempt = 1;; attempt++) {
        pthread_mutex_lock(&r->lock);
        const char *scheme = r->scheme ? r->scheme : (fell_back ? "http" : "https");
        char *auth = r->auth_header ? strdup(r->auth_header) : NULL;
        unsigned gen = r->auth_gen;
        pthread_mutex_unlock(&r->lock);
        cleanup_free char *url = NULL, *acc = NULL;
        char range[32];
        struct curl_slist *hdrs = NULL;
        if (asprintf(&url, "%s://%s/v2/%s/%s/%s", scheme, r->host, r->repo, kind, ref) < 0 ||
            (accept && asprintf(&acc, "Accept: %s", accept) < 0)) {
            free(auth);
            return hypr_error_make(err, ENOMEM, "registry `%s`", r->domain);
        }
        if (acc)
            hdrs = curl_slist_append(hdrs, acc);
        if (auth)
            hdrs = curl_slist_append(hdrs, auth);
        curl_easy_reset(x->h);
        errbuf[0] = 0;
        setup_handle(r, x->h, scheme, errbuf);
        curl_easy_setopt(x->h, CURLOPT_URL, url);
        curl_easy_setopt(x->h, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(x->h, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(x->h, CURLOPT_WRITEDATA, x);
        curl_easy_setopt(x->h, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(x->h, CURLOPT_HEADERDATA, x);
        if (x->offset > 0) {
            snprintf(range, sizeof(range), "%llu-", (unsigned long long)x->offset);
            curl_easy_setopt(x->h, CURLOPT_RANGE, range);
        }
        x->started = x->too_large = x->bad_range = x->cancelled = false;
        x->write_errno = 0;
        x->errlen = 0;
        x->status = 0;
        CURLcode cc = curl_easy_perform(x->h);
        curl_slist_free_all(hdrs);
        if (auth)
            explicit_bzero(auth, strlen(auth));
        free(auth);
        if (cc == CURLE_OK || x->status == 0)
            curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &x->status);

        if (x->write_errno)
            return hypr_error_make(err, x->write_errno, "registry `%s`: %s: write `%s`", r->domain, x->what,
                                   x->path ? x->path : "memory");
        if (x->cancelled)
            return hypr_error_make(err, ECANCELED, "registry `%s`: %s", r->domain, x->what);
        if (x->too_large)
            return hypr_error_make(err, 0, "registry `%s`: %s: the registry sent more than the %lld bytes expected",
                                   r->domain, x->what,
                                   (long long)(x->expect >= 0 ? x->expect : (int64_t)x->mem_max));
        if (cc != CURLE_OK && x->status == 0 && r->scheme == NULL && r->insecure && !fell_back) {
            fell_back = true; /* insecure registry: HTTPS failed, try plain HTTP */
            attempt--;
            continue;
        }
        if (cc == CURLE_OK && r->scheme == NULL) {
            pthread_mutex_lock(&r->lock);
            if (r->scheme == NULL)
                r->scheme = strcmp(scheme, "https") == 0 ? "https" : "http";
            pthread_mutex_unlock(&r->lock);
        }
        if (x->bad_range) {
            if (attempt < REGISTRY_ATTEMPTS && sink_restart(x) == 0)
                continue;
            return hypr_error_make(err, 0, "registry `%s`: %s: bad Content-Range `%s` for a resume at byte %llu",
                                   r->domain, x->what, x->content_range ? x->content_range : "",
                                   (unsigned long long)x->offset);
        }
        if (cc == CURLE_OK && x->status == 401 && !auth_retried) {
            if (handle_401(r, x, gen, err) < 0)
                return -1;
            auth_retried = true;
            attempt--;
            continue;
        }
        if (cc == CURLE_OK && (x->status == 200 || x->status == 206)) {
            if (x->expect >= 0 && x->offset < (uint64_t)x->expect) {
                if (attempt < REGISTRY_ATTEMPTS) {
                    backoff(attempt);
                    continue;
                }
                return hypr_error_make(err, 0,
                                       "registry `%s`: %s: truncated download: got %llu of %lld bytes after %d "
                                       "attempts",
                                       r->domain, x->what, (unsigned long long)x->offset, (long long)x->expect,
                                       attempt);
            }
            return 0;
        }
        if (cc == CURLE_OK && x->status == 416 && x->offset > 0 && attempt < REGISTRY_ATTEMPTS) {
            if (sink_restart(x) < 0)
                return hypr_error_make(err, x->write_errno, "registry `%s`: %s: truncate `%s`", r->domain, x->what,
                                       x->path);
            continue;
        }
        if (cc == CURLE_OK && (x->status == 429 || x->status >= 500) && attempt < REGISTRY_ATTEMPTS) {
            backoff(attempt);
            continue;
        }
        if (cc != CURLE_OK && retryable(cc) && attempt < REGISTRY_ATTEMPTS) {
            backoff(attempt);
            continue;
        }
        if (cc != CURLE_OK) {
            if (x->expect >= 0 && x->offset > 0 && x->offset < (uint64_t)x->expect)
                return hypr_error_make(err, 0,
                                       "registry `%s`: %s: truncated download: got %llu of %lld bytes after %d "
                                       "attempts (%s)",
                                       r->domain, x->what, (unsigned long long)x->offset, (long long)x->expect,
                                       attempt, *errbuf ? errbuf : curl_easy_strerror(cc));
            return hypr_error_make(err, 0, "registry `%s`: %s: %s", r->domain, x->what,
                                   *errbuf ? errbuf : curl_easy_strerror(cc));
        }
        cleanup_free char *st = describe_status(x);
        if (x->status == 401)
            return hypr_error_make(err, 0, "registry `%s`: %s: authentication failed for repository `%s` (%s)",
                                   r->domain, x->what, r->repo, st ? st : "HTTP 401");
        return hypr_error_make(err, 0, "registry `%s`, repository `%s`: %s: %s", r->domain, r->repo, x->what,
                               st ? st : "HTTP error");
    }
}

static int xfer_init(struct xfer *x, struct registry *r, const char *what, hypr_error_t *err)
{
    memset(x, 0, sizeof(*x));
    x->r = r;
    x->what = what;
    x->fd = -1;
    x->expect = -1;
    x->h = curl_easy_init();
    x->sha = EVP_MD_CTX_new();
    if (x->h == NULL || x->sha == NULL || EVP_DigestInit_ex(x->sha, EVP_sha256(), NULL) != 1) {
        xfer_free(x);
        return hypr_error_make(err, ENOMEM, "registry `%s`: %s", r->domain, what);
    }
    return 0;
}

int registry_get_manifest(struct registry *r, const char *reference, char **body, size_t *len, char **media_type,
                          char **digest, hypr_error_t *err)
{
    static const char accept[] = MT_OCI_INDEX ", " MT_OCI_MANIFEST ", " MT_DOCKER_LIST ", " MT_DOCKER_MANIFEST;
    cleanup_free char *what = NULL;
    char got[7 + 64 + 1];
    struct xfer x;
    if (asprintf(&what, "manifest `%s`", reference) < 0)
        return hypr_error_make(err, ENOMEM, "registry `%s`", r->domain);
    if (xfer_init(&x, r, what, err) < 0)
        return -1;
    x.mem_max = REGISTRY_MAX_MANIFEST;
    if (request(r, &x, "manifests", reference, accept, err) < 0) {
        xfer_free(&x);
        return -1;
    }
    sha_hex(x.sha, got);
    bool by_digest = strncmp(reference, "sha256:", 7) == 0;
    if ((by_digest && strcmp(got, reference) != 0) ||
        (!by_digest && x.docker_digest && strncmp(x.docker_digest, "sha256:", 7) == 0 &&
         strcmp(got, x.docker_digest) != 0)) {
        hypr_error_make(err, 0, "registry `%s`, repository `%s`: %s: digest mismatch: expected %s, got %s", r->domain,
                        r->repo, what, by_digest ? reference : x.docker_digest, got);
        xfer_free(&x);
        return -1;
    }
    *len = x.offset;
    *body = x.mem ? x.mem : strdup("");
    x.mem = NULL;
    *media_type = strdup(x.content_type ? x.content_type : "");
    *digest = strdup(got);
    xfer_free(&x);
    if (*body == NULL || *media_type == NULL || *digest == NULL) {
        free(*body);
        free(*media_type);
        free(*digest);
        return hypr_error_make(err, ENOMEM, "registry `%s`: %s", r->domain, reference);
    }
    return 0;
}

static int check_blob(struct registry *r, struct xfer *x, const char *digest, int64_t size, hypr_error_t *err)
{
    char got[7 + 64 + 1];
    sha_hex(x->sha, got);
    if (size >= 0 && x->offset != (uint64_t)size)
        return hypr_error_make(err, 0,
                               "registry `%s`, repository `%s`: %s: size mismatch: expected %lld bytes, got %llu",
                               r->domain, r->repo, x->what, (long long)size, (unsigned long long)x->offset);
    if (strcmp(got, digest) != 0)
        return hypr_error_make(err, 0, "registry `%s`, repository `%s`: %s: digest mismatch: got %s", r->domain,
                               r->repo, x->what, got);
    return 0;
}

int registry_get_blob(struct registry *r, const char *digest, int64_t size, const char *path,
                      registry_progress_fn progress, void *arg, hypr_error_t *err)
{
    cleanup_free char *what = NULL;
    struct xfer x;
    int ret;
    if (digest_validate(digest, err) < 0)
        return hypr_error_wrap(err, "registry `%s`: blob", r->domain);
    if (asprintf(&what, "blob `%s`", digest) < 0)
        return hypr_error_make(err, ENOMEM, "registry `%s`", r->domain);
    if (xfer_init(&x, r, what, err) < 0)
        return -1;
    x.fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (x.fd < 0) {
        xfer_free(&x);
        return hypr_error_make(err, errno, "create `%s`", path);
    }
    x.path = path;
    x.expect = size;
    x.progress = progress;
    x.arg = arg;
    ret = request(r, &x, "blobs", digest, NULL, err);
    if (ret == 0)
        ret = check_blob(r, &x, digest, size, err);
    if (close(x.fd) < 0 && ret == 0)
        ret = hypr_error_make(err, errno, "close `%s`", path);
    x.fd = -1;
    xfer_free(&x);
    return ret;
}

int registry_get_blob_mem(struct registry *r, const char *digest, int64_t size, size_t max, char **body, size_t *len,
                          hypr_error_t *err)
{
    cleanup_free char *what = NULL;
    struct xfer x;
    if (digest_validate(digest, err) < 0)
        return hypr_error_wrap(err, "registry `%s`: blob", r->domain);
    if (asprintf(&what, "blob `%s`", digest) < 0)
        return hypr_error_make(err, ENOMEM, "registry `%s`", r->domain);
    if (xfer_init(&x, r, what, err) < 0)
        return -1;
    x.mem_max = max;
    x.expect = size;
    if (request(r, &x, "blobs", digest, NULL, err) < 0 || check_blob(r, &x, digest, size, err) < 0) {
        xfer_free(&x);
        return -1;
    }
    *len = x.offset;
    *body = x.mem ? x.mem : strdup("");
    x.mem = NULL;
    xfer_free(&x);
    return *body ? 0 : hypr_error_make(err, ENOMEM, "registry `%s`: %s", r->domain, digest);
}
