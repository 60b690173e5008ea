/* tests/fuzz/fuzz_dns.c: libFuzzer target for the DNS message code
 * (net/dns.c): the input is a datagram from a hostile VM. It is parsed;
 * whatever the outcome, every response the server could build from the
 * parsed query is built, at the sizes the server uses and at small ones,
 * and checked: never longer than allowed, header consistent with the
 * query. No crash, no leak, no read outside the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../net/dns.h"

static void check_response(const struct dns_query *q, const uint8_t *b, size_t len, size_t cap)
{
    if (len > cap || len < DNS_HEADER_LEN)
        abort();
    if ((b[0] << 8 | b[1]) != q->id || !(b[2] & 0x80))
        abort();
    if (((b[4] << 8 | b[5]) != 0) != q->has_question)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dns_query q;
    hypr_error_t err = NULL;
    uint8_t out[DNS_MSG_MAX];
    size_t len;
    int r = dns_query_parse(data, size, &q, &err);
    hypr_error_free(&err);
    if (r < 0 && q.fail_rcode < 0)
        return 0;
    if (strlen(q.name) > DNS_NAME_MAX)
        abort();
    const size_t caps[] = { dns_udp_limit(&q), DNS_UDP_LIMIT, 64, 13, sizeof(out) };
    for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
        size_t cap = caps[i];
        if (dns_build_rcode(&q, r < 0 ? q.fail_rcode : DNS_RCODE_REFUSED, out, cap, &len, &err) == 0)
            check_response(&q, out, len, cap);
        hypr_error_free(&err);
        if (r < 0)
            continue;
        uint32_t addrs[DNS_EDNS_UDP_MAX / 16];
        size_t n = size / 4 < sizeof(addrs) / sizeof(addrs[0]) ? size / 4 : sizeof(addrs) / sizeof(addrs[0]);
        memcpy(addrs, data, n * 4);
        if (dns_build_a(&q, addrs, n, 5, out, cap, &len, &err) == 0)
            check_response(&q, out, len, cap);
        hypr_error_free(&err);
        if (dns_build_ptr(&q, q.name, 5, out, cap, &len, &err) == 0)
            check_response(&q, out, len, cap);
        hypr_error_free(&err);
        uint32_t ip;
        if (dns_ptr_name_to_ip4(q.name, &ip)) {
            char back[DNS_PTR_NAME_LEN];
            dns_ip4_to_ptr_name(ip, back);
            if (strcmp(back, q.name) != 0)
                abort();
        }
    }
    return 0;
}
