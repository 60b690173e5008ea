/* kestrel/lib/proto.h: the kestrel vsock protocol, shared by the guest agent
 * (kestrel/lib/server.c) and the host client (kestrel/lib/host_client.c).
 *
 * Every message is a frame: a 5-byte header, u32 payload length (little
 * endian, at most KPROTO_MAX_PAYLOAD) then u8 type, followed by the payload.
 * Payload fields are little-endian integers and byte strings prefixed by
 * their u32 length; docs/kestrel-protocol.md lists every frame type and its
 * fields. This file holds only the encoding machinery:
 *   - struct kbuf: a growing byte buffer used both to build frames and as an
 *     output queue (bytes before `off` were already sent);
 *   - frame building with a sticky allocation failure (puts never fail, the
 *     frame's end reports it);
 *   - struct kproto_reader: a bounds-checked payload parser with a sticky
 *     `bad` flag, so decoding code checks once at the end;
 *   - struct kproto_rx: incremental frame reassembly for non-blocking fds;
 *   - blocking send/receive helpers for the client.
 * Nothing here trusts its input: any length or truncation problem is an
 * error, never an out-of-bounds access. */
#ifndef KESTREL_PROTO_H
#define KESTREL_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../common/error.h"

#define KPROTO_VERSION 1
#define KPROTO_HDR_LEN 5
#define KPROTO_MAX_PAYLOAD (1u << 20) /* 1 MiB */
#define KPROTO_CHUNK (64u * 1024)     /* data frames carry at most this much */

enum kproto_type {
    /* agent -> client, any request */
    KPROTO_OK = 0x01,    /* request finished; payload depends on the request */
    KPROTO_ERROR = 0x02, /* u32 errno (0 if none), str message */
    /* liveness */
    KPROTO_PING = 0x03, /* client: empty. agent: OK {u32 version, str agent} */
    /* exec session */
    KPROTO_EXEC = 0x10,         /* client: attributes, see KPROTO_EA_* */
    KPROTO_EXEC_STARTED = 0x11, /* agent: u32 pid */
    KPROTO_STDIN = 0x12,        /* client: data (never empty) */
    KPROTO_STDIN_EOF = 0x13,    /* client: empty */
    KPROTO_STDOUT = 0x14,       /* agent: data */
    KPROTO_STDERR = 0x15,       /* agent: data */
    KPROTO_RESIZE = 0x16,       /* client: u16 rows, u16 cols */
    KPROTO_EXEC_SIGNAL = 0x17,  /* client: u32 signal, sent to the session's process */
    KPROTO_EXIT = 0x18,         /* agent: u32 code (0-255, 128+signal), u32 raw wait status */
    /* one-shot requests */
    KPROTO_SIGNAL = 0x20,     /* client: i32 pid (0 = workload), u32 signal -> OK */
    KPROTO_PS = 0x30,         /* client: empty -> PS_ENTRY... then OK */
    KPROTO_PS_ENTRY = 0x31,   /* agent: u32 pid, u32 ppid, u32 uid, u8 state, str user, bytes cmdline */
    KPROTO_WRITE_FILE = 0x40, /* client: str path, u32 mode -> OK (ready) */
    KPROTO_FILE_DATA = 0x41,  /* client: data */
    KPROTO_FILE_END = 0x42,   /* client: empty -> OK (renamed into place) */
    KPROTO_SHUTDOWN = 0x50,   /* client: u32 timeout_ms -> OK, then the VM powers off */
};

/* Attribute tags of an EXEC payload: a sequence of (u8 tag, bytes value). */
enum kproto_exec_attr {
    KPROTO_EA_ARG = 1,     /* repeated, in order; at least one */
    KPROTO_EA_ENV = 2,     /* repeated, "KEY=VALUE", overrides the defaults */
    KPROTO_EA_WORKDIR = 3, /* at most once */
    KPROTO_EA_USER = 4,    /* at most once */
    KPROTO_EA_TTY = 5,     /* at most once: u16 rows, u16 cols (4 bytes) */
};

/* Human-readable name of a frame type, "unknown" for others. */
const char *kproto_type_name(uint8_t type);

/* A growing byte buffer. Invariant: off <= len <= cap; data[off..len) are
 * the live bytes. `failed` is set once an allocation failed; later puts are
 * ignored so builders check it once. */
struct kbuf {
    uint8_t *data;
    size_t off, len, cap;
    bool failed;
};

size_t kbuf_avail(const struct kbuf *b);
const uint8_t *kbuf_head(const struct kbuf *b);
void kbuf_put(struct kbuf *b, const void *p, size_t n);
void kbuf_put_u8(struct kbuf *b, uint8_t v);
void kbuf_put_u16(struct kbuf *b, uint16_t v);
void kbuf_put_u32(struct kbuf *b, uint32_t v);
void kbuf_put_bytes(struct kbuf *b, const void *p, size_t n); /* u32 length + bytes */
void kbuf_put_str(struct kbuf *b, const char *s);             /* as bytes, no NUL */
/* Drops n live bytes from the front; compacts when it is cheap. */
void kbuf_consume(struct kbuf *b, size_t n);
void kbuf_reset(struct kbuf *b);
void kbuf_free(struct kbuf *b);
/* Writes as many live bytes as fd takes without blocking forever (send with
 * MSG_NOSIGNAL on sockets, write otherwise). Returns 0 (possibly with bytes
 * left when the fd would block) or -1 with err set. */
int kbuf_flush(struct kbuf *b, int fd, hypr_error_t *err);
/* Writes every live byte to a blocking fd. */
int kbuf_flush_all(struct kbuf *b, int fd, hypr_error_t *err);

/* Frame building: begin writes the header and returns its position (the
 * payload follows via kbuf_put_*; nothing may be consumed from b until
 * end); end patches the length. end fails when
 * the payload exceeds KPROTO_MAX_PAYLOAD or an allocation failed (the frame
 * is then removed from b). */
size_t kproto_frame_begin(struct kbuf *b, uint8_t type);
int kproto_frame_end(struct kbuf *b, size_t start, hypr_error_t *err);
/* One whole frame with the given raw payload. */
int kproto_put_frame(struct kbuf *b, uint8_t type, const void *payload, size_t len, hypr_error_t *err);
/* An ERROR frame: errnum (0 if none) and the formatted message. */
int kproto_put_error(struct kbuf *b, int errnum, hypr_error_t *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A received frame; payload points into the receive buffer and stays valid
 * until the next kproto_rx_* call. */
struct kproto_frame {
    uint8_t type;
    const uint8_t *payload;
    uint32_t len;
};

/* Payload parser. Getters past the end set `bad` and return zero/NULL. */
struct kproto_reader {
    const uint8_t *p;
    size_t len, pos;
    bool bad;
};

void kproto_reader_init(struct kproto_reader *r, const struct kproto_frame *f);
uint8_t kproto_get_u8(struct kproto_reader *r);
uint16_t kproto_get_u16(struct kproto_reader *r);
uint32_t kproto_get_u32(struct kproto_reader *r);
/* A u32-length-prefixed byte string; *n gets its length. Points into the
 * frame. */
const uint8_t *kproto_get_bytes(struct kproto_reader *r, size_t *n);
/* A byte string as a new NUL-terminated C string; an embedded NUL byte is
 * malformed (sets bad). Caller frees. */
char *kproto_get_str(struct kproto_reader *r);
bool kproto_reader_at_end(const struct kproto_reader *r);
/* Fails ("malformed TYPE frame") when a getter overran or bytes are left. */
int kproto_reader_finish(const struct kproto_reader *r, uint8_t type, hypr_error_t *err);

/* Incremental frame reassembly. */
struct kproto_rx {
    struct kbuf buf;
    size_t consumed; /* length of the frame returned last, dropped on next */
};

enum { KPROTO_RX_AGAIN = 2 };
/* Reads what fd has (at most 64 KiB). Returns 1 after reading bytes, 0 at
 * end of stream, KPROTO_RX_AGAIN when a non-blocking fd has nothing, -1 with
 * err set on error. */
int kproto_rx_fill(struct kproto_rx *rx, int fd, hypr_error_t *err);
/* Returns 1 with the next complete frame in *f, 0 when more bytes are
 * needed, -1 with err set when the header announces a payload longer than
 * KPROTO_MAX_PAYLOAD (the stream cannot be resynchronised). */
int kproto_rx_next(struct kproto_rx *rx, struct kproto_frame *f, hypr_error_t *err);
/* True when bytes of an incomplete frame are buffered. */
bool kproto_rx_partial(const struct kproto_rx *rx);
void kproto_rx_free(struct kproto_rx *rx);
/* Blocking: reads from fd until a whole frame is available. End of stream
 * is an error ("connection closed"). */
int kproto_recv(struct kproto_rx *rx, int fd, struct kproto_frame *f, hypr_error_t *err);

/* Turns a received ERROR frame into *err: the agent's message, prefixed by
 * `what` unless NULL (the agent's messages name their operation). */
int kproto_error_from_frame(const struct kproto_frame *f, hypr_error_t *err, const char *what);

#endif
