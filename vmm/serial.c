/* vmm/serial.c: 16550A UART emulation, see serial.h.
 *
 * Register model (offsets from 0x3f8): 0 RBR/THR (DLL when DLAB), 1 IER (DLM
 * when DLAB), 2 IIR/FCR, 3 LCR, 4 MCR, 5 LSR, 6 MSR, 7 SCR. Transmission is
 * instantaneous (THR always empty), so the THR-empty interrupt is pending
 * whenever IER enables it and the guest has not read IIR since. The IRQ line
 * is level-driven from the computed IIR (KVM_IRQ_LINE). Loopback mode (MCR
 * bit 4) feeds THR back into the receiver, as Linux's probe expects.
 *
 * Input flow control: in_fd is read only while the guest can take input:
 * it raised OUT1 (MCR bit 2; kestrel does once the console is configured
 * for input, docs/kestrel-protocol.md), RTS is up (Linux drops it when its
 * buffer is full and CRTSCTS is set), loopback is off and the rx FIFO has
 * room. Bytes sent earlier would be lost (Linux clears the FIFO when it
 * opens the port) or processed with the wrong terminal settings. While input
 * is held, in_fd is off the event loop: epoll would report a closed pipe's
 * EPOLLHUP even with no event requested. */
#include "serial.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "evloop.h"

#define COM1_BASE 0x3f8
#define COM1_IRQ 4
#define RX_FIFO 64
#define OUT_BUF 4096

#define IER_RDI 0x01
#define IER_THRI 0x02
#define IIR_NONE 0x01
#define IIR_THRI 0x02
#define IIR_RDI 0x04
#define IIR_FIFO 0xc0
#define LCR_DLAB 0x80
#define LSR_DR 0x01
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define MCR_RTS 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10
#define FCR_FIFO_ENABLE 0x01
#define FCR_CLEAR_RX 0x02
#define MSR_DCD 0x80
#define MSR_DSR 0x20
#define MSR_CTS 0x10

struct serial {
    struct vm *vm;
    pthread_mutex_t lock;
    int out_fd, in_fd;
    uint8_t dll, dlm, ier, iir, fcr, lcr, mcr, lsr, msr, scr;
    bool thri_pending;      /* THR-empty interrupt not yet acknowledged */
    bool in_polled;         /* in_fd is on the event loop (input flows, see above) */
    bool in_eof;            /* in_fd ended or failed: never polled again */
    int irq_level;
    uint8_t rx[RX_FIFO];
    unsigned rx_head, rx_len;
    char out[OUT_BUF];
    size_t out_len;
};

static void out_flush_locked(struct serial *s)
{
    size_t off = 0;
    while (off < s->out_len) {
        ssize_t n = write(s->out_fd, s->out + off, s->out_len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* the reader went away: drop console output, keep running */
        off += (size_t)n;
    }
    s->out_len = 0;
}

static void update_irq_locked(struct serial *s)
{
    uint8_t iir = IIR_NONE;
    if ((s->ier & IER_RDI) && s->rx_len > 0)
        iir = IIR_RDI;
    else if ((s->ier & IER_THRI) && s->thri_pending)
        iir = IIR_THRI;
    s->iir = iir | ((s->fcr & FCR_FIFO_ENABLE) ? IIR_FIFO : 0);
    s->lsr = (uint8_t)((s->lsr & ~LSR_DR) | (s->rx_len ? LSR_DR : 0) | LSR_THRE | LSR_TEMT);
    int level = !(iir & IIR_NONE);
    if (level != s->irq_level) {
        s->irq_level = level;
        vm_irq_line(s->vm, COM1_IRQ, level, NULL);
    }
}

static void serial_input(void *opaque, int fd, uint32_t events);

static bool in_wanted_locked(const struct serial *s)
{
    return (s->mcr & (MCR_OUT1 | MCR_RTS | MCR_LOOP)) == (MCR_OUT1 | MCR_RTS) && s->rx_len < RX_FIFO;
}

/* Puts in_fd on the event loop or takes it off, per in_wanted_locked. A
 * failed evloop_add is retried at the guest's next register access. */
static void in_update_locked(struct serial *s)
{
    if (s->in_fd < 0 || s->in_eof)
        return;
    bool want = in_wanted_locked(s);
    if (want == s->in_polled)
        return;
    if (want) {
        if (evloop_add(s->vm->loop, s->in_fd, EPOLLIN, serial_input, s, NULL) == 0)
            s->in_polled = true;
    } else {
        evloop_del(s->vm->loop, s->in_fd);
        s->in_polled = false;
    }
}

static void rx_push_locked(struct serial *s, uint8_t b)
{
    if (s->rx_len < RX_FIFO) {
        s->rx[(s->rx_head + s->rx_len) % RX_FIFO] = b;
        s->rx_len++;
    }
}

static void transmit_locked(struct serial *s, uint8_t b)
{
    if (s->mcr & MCR_LOOP) {
        rx_push_locked(s, b);
        return;
    }
    s->out[s->out_len++] = (char)b;
    if (b == '\n' || s->out_len == OUT_BUF)
        out_flush_locked(s);
}

static void serial_io(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
    struct serial *s = opaque;
    uint8_t v = data[0];

    pthread_mutex_lock(&s->lock);
    if (is_write) {
        switch (off) {
        case 0:
            if (s->lcr & LCR_DLAB) {
                s->dll = v;
            } else {
                transmit_locked(s, v);
                s->thri_pending = true;
            }
            break;
        case 1:
            if (s->lcr & LCR_DLAB) {
                s->dlm = v;
            } else {
                if ((v & IER_THRI) && !(s->ier & IER_THRI))
                    s->thri_pending = true; /* enabling THRI with THR empty raises it */
                s->ier = v & 0x0f;
            }
            break;
        case 2:
            s->fcr = v & 0xc9;
            if (v & FCR_CLEAR_RX)
                s->rx_len = 0;
            break;
        case 3: s->lcr = v; break;
        case 4: s->mcr = v & 0x1f; break;
        case 7: s->scr = v; break;
        default: break; /* LSR and MSR are read-only */
        }
    } else {
        switch (off) {
        case 0:
            if (s->lcr & LCR_DLAB) {
                v = s->dll;
            } else if (s->rx_len) {
                v = s->rx[s->rx_head];
                s->rx_head = (s->rx_head + 1) % RX_FIFO;
                s->rx_len--;
            } else {
                v = 0;
            }
            break;
        case 1: v = (s->lcr & LCR_DLAB) ? s->dlm : s->ier; break;
        case 2:
            v = s->iir;
            if ((v & 0x0f) == IIR_THRI)
                s->thri_pending = false; /* reading IIR acknowledges THRI */
            break;
        case 3: v = s->lcr; break;
        case 4: v = s->mcr; break;
        case 5: v = s->lsr; break;
        case 6:
            if (s->mcr & MCR_LOOP) /* loopback: MCR outputs appear on MSR inputs */
                v = (uint8_t)(((s->mcr & 0x0c) << 4) | ((s->mcr & 0x01) << 5) | ((s->mcr & 0x02) << 3));
            else
                v = MSR_DCD | MSR_DSR | MSR_CTS;
            break;
        case 7: v = s->scr; break;
        default: v = 0xff; break;
        }
        memset(data, 0, len);
        data[0] = v;
    }
    update_irq_locked(s);
    in_update_locked(s);
    pthread_mutex_unlock(&s->lock);
}

static void serial_input(void *opaque, int fd, uint32_t events)
{
    struct serial *s = opaque;
    uint8_t buf[RX_FIFO];

    pthread_mutex_lock(&s->lock);
    if (!s->in_polled || !in_wanted_locked(s)) { /* a call racing with evloop_del */
        in_update_locked(s);
        pthread_mutex_unlock(&s->lock);
        return;
    }
    ssize_t n = read(fd, buf, RX_FIFO - s->rx_len);
    if (n > 0) {
        for (ssize_t i = 0; i < n; i++)
            rx_push_locked(s, buf[i]);
    } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        evloop_del(s->vm->loop, fd); /* end of input */
        s->in_polled = false;
        s->in_eof = true;
    }
    update_irq_locked(s);
    in_update_locked(s);
    pthread_mutex_unlock(&s->lock);
}

int serial_new(struct vm *vm, int out_fd, int in_fd, struct serial **out, hypr_error_t *err)
{
    struct serial *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return hypr_error_make(err, ENOMEM, "allocate the serial port");
    pthread_mutex_init(&s->lock, NULL);
    s->vm = vm;
    s->out_fd = out_fd;
    s->in_fd = in_fd;
    s->iir = IIR_NONE;
    s->lsr = LSR_THRE | LSR_TEMT;
    s->msr = MSR_DCD | MSR_DSR | MSR_CTS;
    if (vm_bus_register(&vm->pio, COM1_BASE, 8, serial_io, s, err) < 0) {
        free(s);
        return hypr_error_wrap(err, "serial port");
    }
    /* in_fd joins the event loop only once the guest is ready for input
     * (in_update_locked); check now that epoll takes it (a regular file or
     * /dev/null it does not) */
    if (in_fd >= 0) {
        if (evloop_add(vm->loop, in_fd, EPOLLIN, serial_input, s, err) < 0) {
            vm_bus_unregister(&vm->pio, COM1_BASE);
            free(s);
            return hypr_error_wrap(err, "serial port input");
        }
        evloop_del(vm->loop, in_fd); /* a call in between finds !in_polled */
    }
    *out = s;
    return 0;
}

void serial_flush(struct serial *s)
{
    pthread_mutex_lock(&s->lock);
    out_flush_locked(s);
    pthread_mutex_unlock(&s->lock);
}

void serial_free(struct serial *s)
{
    if (s == NULL)
        return;
    serial_flush(s);
    pthread_mutex_destroy(&s->lock);
    free(s);
}
