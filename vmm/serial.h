/* vmm/serial.h: a 16550A UART at COM1 (port 0x3f8, IRQ 4): the guest's
 * console. Transmitted bytes go to `out_fd` (buffered by line); bytes read
 * from `in_fd` (optional, -1 for none) are received by the guest. */
#ifndef HYPR_VMM_SERIAL_H
#define HYPR_VMM_SERIAL_H

#include "vm.h"

struct serial;
int serial_new(struct vm *vm, int out_fd, int in_fd, struct serial **out, hypr_error_t *err);
/* Writes out what the guest transmitted and is still buffered. */
void serial_flush(struct serial *s);
void serial_free(struct serial *s);

#endif
