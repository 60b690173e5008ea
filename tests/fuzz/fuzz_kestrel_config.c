/* tests/fuzz/fuzz_kestrel_config.c: libFuzzer target for the guest agent's
 * config decoder (kestrel/lib/config.c), which parses /kestrel.cfg as PID 1.
 * Whatever decodes must validate, re-encode and decode to the same config. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../kestrel/lib/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kestrel_config c, d;
    hypr_error_t err = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;

    if (kestrel_config_decode(data, size, &c, &err) < 0) {
        hypr_error_free(&err);
        return 0;
    }
    if (kestrel_config_validate(&c, &err) < 0 || kestrel_config_encode(&c, &buf, &len, &err) < 0)
        abort(); /* a decoded config must be valid and encodable */
    if (kestrel_config_decode(buf, len, &d, &err) < 0)
        abort();
    if (d.argc != c.argc || d.envc != c.envc || d.nmounts != c.nmounts || d.vsock_port != c.vsock_port ||
        d.tty != c.tty)
        abort();
    for (size_t i = 0; i < c.argc; i++)
        if (strcmp(c.argv[i], d.argv[i]) != 0)
            abort();
    free(buf);
    kestrel_config_free(&c);
    kestrel_config_free(&d);
    return 0;
}
