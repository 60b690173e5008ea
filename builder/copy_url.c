/* builder/copy_url.c: ADD <http(s) URL> for `hypr build`: the file name a
 * URL gives, --checksum values, and the download (libcurl) with its digest
 * computed on the way. Rules and contract in copy.h. Used by bstep_copy
 * (builder/build_steps.c); unit tests in tests/unit/test_copy_url.c, which
 * run the download against an HTTP server of their own on loopback.
 *
 * hyprd downloads, not a VM: the URL is reached from the host's network
 * (its proxy settings apply, except for a loopback host). Only http and
 * https are followed, redirects included. */
#include "copy.h"

#include <curl/curl.h>
#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ref.h"

#define UNNAMED "__unnamed__" /* BuildKit's name for a URL without a path */

bool copy_is_url(const char *src)
{
    return strncmp(src, "http://", 7) == 0 || strncmp(src, "https://", 8) == 0;
}

int copy_url_file_name(const char *url, char **name, hypr_error_t *err)
{
    *name = NULL;
    CURLU *u = curl_url();
    if (u == NULL)
        return hypr_error_make(err, ENOMEM, "URL `%s`", url);
    char *path = NULL;
    CURLUcode rc = curl_url_set(u, CURLUPART_URL, url, 0);
    if (rc == CURLUE_OK)
        rc = curl_url_get(u, CURLUPART_PATH, &path, CURLU_URLDECODE);
    curl_url_cleanup(u);
    if (rc != CURLUE_OK)
        return hypr_error_refuse(err, EINVAL, "URL `%s` is invalid: %s", url, curl_url_strerror(rc));
    /* Go's path.Base of the decoded path, as BuildKit takes it */
    size_t n = strlen(path);
    while (n > 0 && path[n - 1] == '/')
        n--;
    size_t start = n;
    while (start > 0 && path[start - 1] != '/')
        start--;
    size_t len = n - start;
    bool unnamed = len == 0 || (len == 1 && path[start] == '.') || (len == 2 && memcmp(path + start, "..", 2) == 0);
    *name = unnamed ? strdup(UNNAMED) : strndup(path + start, len);
    curl_free(path);
    if (*name == NULL)
        return hypr_error_make(err, ENOMEM, "URL `%s`", url);
    return 0;
}

/* The digest algorithm of a checksum and the length of its hex part. */
static const EVP_MD *checksum_md(const char *checksum, size_t *hexlen)
{
    static const struct {
        const char *name;
        size_t hex;
    } algs[] = { { "sha256", 64 }, { "sha384", 96 }, { "sha512", 128 } };
    for (size_t i = 0; i < ARRAY_SIZE(algs); i++) {
        size_t n = strlen(algs[i].name);
        if (strncmp(checksum, algs[i].name, n) == 0 && checksum[n] == ':') {
            *hexlen = algs[i].hex;
            return EVP_get_digestbyname(algs[i].name);
        }
    }
    return NULL;
}

int copy_checksum_check(const char *checksum, hypr_error_t *err)
{
    size_t hex = 0;
    const EVP_MD *md = checksum_md(checksum, &hex);
    if (md == NULL)
        return hypr_error_refuse(err, EINVAL, "--checksum=%s: expected sha256:<hex> (or sha384:, sha512:)", checksum);
    const char *h = strchr(checksum, ':') + 1;
    if (strlen(h) != hex || strspn(h, "0123456789abcdef") != hex)
        return hypr_error_refuse(err, EINVAL, "--checksum=%s: the digest must be %zu lower-case hex digits", checksum,
                                 hex);
    return 0;
}

/* ---- the download ---- */

struct fetch {
    int fd;
    EVP_MD_CTX *sha256, *check; /* check: the --checksum algorithm's, NULL when none */
    uint64_t size, max;
    bool too_big, write_failed;
    int write_errno;
    volatile int *cancel;
    char reason[128];           /* the reason phrase of the last status line */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t on_body(char *data, size_t sz, size_t nmemb, void *arg)
{
    struct fetch *f = arg;
    size_t len = sz * nmemb;
    if (f->size + len > f->max) {
        f->too_big = true;
        return 0;
    }
    for (size_t done = 0; done < len;) {
        ssize_t n = write(f->fd, data + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            f->write_failed = true;
            f->write_errno = n < 0 ? errno : EIO;
            return 0;
        }
        done += (size_t)n;
    }
    EVP_DigestUpdate(f->sha256, data, len);
    if (f->check)
        EVP_DigestUpdate(f->check, data, len);
    f->size += len;
    return len;
}

static size_t on_header(char *data, size_t sz, size_t nmemb, void *arg)
{
    struct fetch *f = arg;
    size_t len = sz * nmemb;
    if (len > 5 && strncmp(data, "HTTP/", 5) == 0) { /* "HTTP/1.1 404 Not Found\r\n" */
        char line[160];
        snprintf(line, sizeof(line), "%.*s", (int)(len < sizeof(line) ? len : sizeof(line) - 1), data);
        line[strcspn(line, "\r\n")] = 0;
        const char *sp = strchr(line, ' ');
        const char *reason = sp ? strchr(sp + 1, ' ') : NULL;
        snprintf(f->reason, sizeof(f->reason), "%s", reason ? reason + 1 : "");
    }
    return len;
}

static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    struct fetch *f = arg;
    return f->cancel && *f->cancel ? 1 : 0;
}

static void hex_of(EVP_MD_CTX *m, const char *alg, char *out, size_t cap)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(m, md, &n);
    size_t o = (size_t)snprintf(out, cap, "%s:", alg);
    for (unsigned i = 0; i < n && o + 3 <= cap; i++)
        o += (size_t)snprintf(out + o, cap - o, "%02x", md[i]);
}

int copy_url_fetch(const char *url, int fd, const struct copy_fetch_opts *o, struct copy_fetch *out,
                   hypr_error_t *err)
{
    struct fetch f = { .fd = fd, .max = o->max_size ? o->max_size : COPY_URL_MAX_SIZE, .cancel = o->cancel };
    char errbuf[CURL_ERROR_SIZE] = "";
    const EVP_MD *check_md = NULL;
    size_t hexlen = 0;
    int ret = -1;
    CURL *h = NULL;
    CURLU *u = NULL;
    char *host = NULL;
    memset(out, 0, sizeof(*out));
    if (o->checksum) {
        if (copy_checksum_check(o->checksum, err) < 0)
            return -1;
        check_md = checksum_md(o->checksum, &hexlen);
    }
    pthread_once(&curl_once, curl_init_once);
    if ((f.sha256 = EVP_MD_CTX_new()) == NULL || !EVP_DigestInit_ex(f.sha256, EVP_sha256(), NULL) ||
        (check_md && ((f.check = EVP_MD_CTX_new()) == NULL || !EVP_DigestInit_ex(f.check, check_md, NULL))) ||
        (h = curl_easy_init()) == NULL || (u = curl_url()) == NULL) {
        hypr_error_make(err, ENOMEM, "download `%s`", url);
        goto out;
    }
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, 0);
    if (uc == CURLUE_OK)
        uc = curl_url_get(u, CURLUPART_HOST, &host, 0);
    if (uc != CURLUE_OK) {
        hypr_error_refuse(err, EINVAL, "URL `%s` is invalid: %s", url, curl_url_strerror(uc));
        goto out;
    }
    curl_easy_setopt(h, CURLOPT_CURLU, u);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "hypr-build");
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(h, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(h, CURLOPT_FILETIME, 1L);
    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)f.max);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &f);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &f);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &f);
    if (ref_domain_is_loopback(host))
        curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    CURLcode cc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (f.too_big || cc == CURLE_FILESIZE_EXCEEDED) {
        hypr_error_refuse(err, EFBIG, "download `%s`: larger than the limit of %llu MiB", url,
                          (unsigned long long)(f.max >> 20));
        goto out;
    }
    if (f.write_failed) {
        hypr_error_make(err, f.write_errno, "download `%s`: write", url);
        goto out;
    }
    if (cc == CURLE_ABORTED_BY_CALLBACK) {
        hypr_error_refuse(err, ECANCELED, "download `%s`: cancelled", url);
        goto out;
    }
    if (cc == CURLE_HTTP_RETURNED_ERROR || (cc == CURLE_OK && (status < 200 || status > 299))) {
        hypr_error_refuse(err, status == 404 ? ENOENT : EIO, "download `%s`: HTTP status %ld%s%s", url, status,
                          f.reason[0] ? " " : "", f.reason);
        goto out;
    }
    if (cc != CURLE_OK) {
        hypr_error_refuse(err, EIO, "download `%s`: %s", url, errbuf[0] ? errbuf : curl_easy_strerror(cc));
        goto out;
    }
    hex_of(f.sha256, "sha256", out->digest, sizeof(out->digest));
    if (f.check) {
        char got[7 + 128 + 1], alg[8];
        snprintf(alg, sizeof(alg), "%.*s", (int)strcspn(o->checksum, ":"), o->checksum);
        hex_of(f.check, alg, got, sizeof(got));
        if (strcmp(got, o->checksum) != 0) {
            hypr_error_refuse(err, EINVAL, "download `%s`: checksum mismatch: expected %s, got %s", url, o->checksum,
                              got);
            goto out;
        }
    }
    curl_off_t ft = -1;
    curl_easy_getinfo(h, CURLINFO_FILETIME_T, &ft);
    out->size = f.size;
    out->mtime = ft >= 0 ? (int64_t)ft : (int64_t)time(NULL);
    ret = 0;
out:
    curl_free(host);
    if (h)
        curl_easy_cleanup(h);
    curl_url_cleanup(u);
    EVP_MD_CTX_free(f.sha256);
    EVP_MD_CTX_free(f.check);
    return ret;
}
