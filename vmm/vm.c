/* vmm/vm.c: the VM core: /dev/kvm, the VM file descriptor, guest RAM, the
 * port-I/O and MMIO buses, interrupt injection, ioeventfds, and stopping.
 * See vm.h for the memory layout and threading contract. vCPUs live in
 * vcpu.c, boot-time guest structures in loader.c and mptable.c. */
#include "vm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define VM_TSS_ADDR 0xFFFBD000ULL      /* 3 pages below the identity map page */
#define VM_IDENTITY_MAP_ADDR 0xFFFBC000ULL

void *vm_gpa_to_hva(struct vm *vm, uint64_t gpa, uint64_t len)
{
    uint64_t end;

    if (__builtin_add_overflow(gpa, len, &end))
        return NULL;
    if (end <= vm->low_size)
        return vm->mem + gpa;
    if (gpa >= VM_HIGH_RAM_START) {
        uint64_t high = vm->mem_size - vm->low_size;
        if (end - VM_HIGH_RAM_START <= high)
            return vm->mem + vm->low_size + (gpa - VM_HIGH_RAM_START);
    }
    return NULL;
}

/* ---- buses ---- */

static void bus_init(struct vm_bus *bus)
{
    pthread_rwlock_init(&bus->lock, NULL);
    bus->ranges = NULL;
    bus->n = bus->cap = 0;
}

static void bus_destroy(struct vm_bus *bus)
{
    free(bus->ranges);
    pthread_rwlock_destroy(&bus->lock);
}

int vm_bus_register(struct vm_bus *bus, uint64_t base, uint64_t len, vm_io_fn fn, void *opaque,
                    hypr_error_t *err)
{
    size_t i;
    int ret = 0;

    if (len == 0 || base + len < base)
        return hypr_error_make(err, EINVAL, "register I/O range %#llx+%#llx",
                               (unsigned long long)base, (unsigned long long)len);
    pthread_rwlock_wrlock(&bus->lock);
    for (i = 0; i < bus->n; i++) {
        struct vm_io_range *r = &bus->ranges[i];
        if (base < r->base + r->len && r->base < base + len) {
            ret = hypr_error_make(err, EBUSY, "register I/O range %#llx+%#llx: overlaps %#llx+%#llx",
                                  (unsigned long long)base, (unsigned long long)len,
                                  (unsigned long long)r->base, (unsigned long long)r->len);
            goto out;
        }
        if (r->base > base)
            break;
    }
    if (bus->n == bus->cap) {
        size_t cap = bus->cap ? bus->cap * 2 : 16;
        struct vm_io_range *n = realloc(bus->ranges, cap * sizeof(*n));
        if (n == NULL) {
            ret = hypr_error_make(err, ENOMEM, "register I/O range");
            goto out;
        }
        bus->ranges = n;
        bus->cap = cap;
    }
    memmove(&bus->ranges[i + 1], &bus->ranges[i], (bus->n - i) * sizeof(*bus->ranges));
    bus->ranges[i] = (struct vm_io_range){ base, len, fn, opaque };
    bus->n++;
out:
    pthread_rwlock_unlock(&bus->lock);
    return ret;
}

void vm_bus_unregister(struct vm_bus *bus, uint64_t base)
{
    pthread_rwlock_wrlock(&bus->lock);
    for (size_t i = 0; i < bus->n; i++)
        if (bus->ranges[i].base == base) {
            memmove(&bus->ranges[i], &bus->ranges[i + 1], (bus->n - i - 1) * sizeof(*bus->ranges));
            bus->n--;
            break;
        }
    pthread_rwlock_unlock(&bus->lock);
}

bool vm_bus_access(struct vm_bus *bus, uint64_t addr, uint8_t *data, uint32_t len, bool is_write)
{
    bool found = false;
    size_t lo = 0, hi;

    pthread_rwlock_rdlock(&bus->lock);
    hi = bus->n;
    while (lo < hi) { /* binary search for the last range with base <= addr */
        size_t mid = (lo + hi) / 2;
        if (bus->ranges[mid].base <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo > 0) {
        struct vm_io_range *r = &bus->ranges[lo - 1];
        if (addr - r->base < r->len && len <= r->len - (addr - r->base)) {
            r->fn(r->opaque, addr - r->base, data, len, is_write);
            found = true;
        }
    }
    pthread_rwlock_unlock(&bus->lock);
    if (!found && !is_write)
        memset(data, 0xff, len);
    return found;
}

/* ---- interrupts ---- */

int vm_irq_line(struct vm *vm, uint32_t gsi, int level, hypr_error_t *err)
{
    struct kvm_irq_level irq = { .irq = gsi, .level = level };
    if (ioctl(vm->vm_fd, KVM_IRQ_LINE, &irq) < 0)
        return hypr_error_make(err, errno, "KVM_IRQ_LINE gsi %u", gsi);
    return 0;
}

int vm_signal_msi(struct vm *vm, uint64_t addr, uint32_t data, hypr_error_t *err)
{
    struct kvm_msi msi = {
        .address_lo = (uint32_t)addr,
        .address_hi = (uint32_t)(addr >> 32),
        .data = data,
    };
    if (ioctl(vm->vm_fd, KVM_SIGNAL_MSI, &msi) < 0)
        return hypr_error_make(err, errno, "KVM_SIGNAL_MSI %#llx/%#x", (unsigned long long)addr, data);
    return 0;
}

int vm_ioeventfd(struct vm *vm, uint64_t addr, uint32_t len, bool pio, int fd, bool assign,
                 hypr_error_t *err)
{
    struct kvm_ioeventfd ioe = {
        .addr = addr,
        .len = len,
        .fd = fd,
        .flags = (pio ? KVM_IOEVENTFD_FLAG_PIO : 0) | (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN),
    };
    if (ioctl(vm->vm_fd, KVM_IOEVENTFD, &ioe) < 0)
        return hypr_error_make(err, errno, "%s ioeventfd at %#llx", assign ? "bind" : "unbind",
                               (unsigned long long)addr);
    return 0;
}

void vm_request_stop(struct vm *vm, const char *fatal)
{
    pthread_mutex_lock(&vm->stop_lock);
    if (!atomic_load(&vm->stopping)) {
        if (fatal)
            vm->fatal = strdup(fatal);
        atomic_store(&vm->stopping, true);
        uint64_t one = 1;
        if (write(vm->stop_efd, &one, sizeof(one)) < 0) { /* the efd is never full */ }
    }
    pthread_mutex_unlock(&vm->stop_lock);
}

/* ---- creation ---- */

static int set_memory(struct vm *vm, uint32_t slot, uint64_t gpa, uint64_t size, void *hva,
                      hypr_error_t *err)
{
    struct kvm_userspace_memory_region r = {
        .slot = slot,
        .guest_phys_addr = gpa,
        .memory_size = size,
        .userspace_addr = (uint64_t)(uintptr_t)hva,
    };
    if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
        return hypr_error_make(err, errno, "map %llu MiB of guest RAM at %#llx",
                               (unsigned long long)(size >> 20), (unsigned long long)gpa);
    return 0;
}

int vm_create(struct vm *vm, uint64_t mem_size, int ncpus, hypr_error_t *err)
{
    int api;

    memset(vm, 0, sizeof(*vm));
    vm->kvm_fd = vm->vm_fd = vm->stop_efd = -1;
    vm->exit_status = -1;
    vm->ncpus = ncpus;
    bus_init(&vm->pio);
    bus_init(&vm->mmio);
    pthread_mutex_init(&vm->stop_lock, NULL);

    vm->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (vm->stop_efd < 0)
        return hypr_error_make(err, errno, "eventfd");
    vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (vm->kvm_fd < 0)
        return hypr_error_make(err, errno, "open `/dev/kvm`");
    api = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
    if (api != KVM_API_VERSION)
        return hypr_error_make(err, 0, "`/dev/kvm`: API version %d, expected %d", api, KVM_API_VERSION);
    static const struct { int cap; const char *name; } caps[] = {
        { KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP" },
        { KVM_CAP_PIT2, "KVM_CAP_PIT2" },
        { KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY" },
        { KVM_CAP_SIGNAL_MSI, "KVM_CAP_SIGNAL_MSI" },
        { KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD" },
        { KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID" },
    };
    for (size_t i = 0; i < ARRAY_SIZE(caps); i++)
        if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, caps[i].cap) <= 0)
            return hypr_error_make(err, 0, "`/dev/kvm` lacks %s", caps[i].name);

    vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
    if (vm->vm_fd < 0)
        return hypr_error_make(err, errno, "KVM_CREATE_VM");
    if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)VM_TSS_ADDR) < 0)
        return hypr_error_make(err, errno, "KVM_SET_TSS_ADDR");
    uint64_t idmap = VM_IDENTITY_MAP_ADDR;
    if (ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0)
        return hypr_error_make(err, errno, "KVM_SET_IDENTITY_MAP_ADDR");
    if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
        return hypr_error_make(err, errno, "KVM_CREATE_IRQCHIP");
    struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
    if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
        return hypr_error_make(err, errno, "KVM_CREATE_PIT2");

    /* Guest RAM: one anonymous mapping, untouched pages cost nothing. */
    vm->mem_size = mem_size;
    vm->low_size = mem_size < VM_MMIO_HOLE_START ? mem_size : VM_MMIO_HOLE_START;
    vm->mem = mmap(NULL, mem_size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (vm->mem == MAP_FAILED) {
        vm->mem = NULL;
        return hypr_error_make(err, errno, "allocate %llu MiB of guest RAM",
                               (unsigned long long)(mem_size >> 20));
    }
    madvise(vm->mem, mem_size, MADV_MERGEABLE);
    madvise(vm->mem, mem_size, MADV_HUGEPAGE);
    if (set_memory(vm, 0, 0, vm->low_size, vm->mem, err) < 0)
        return -1;
    if (mem_size > vm->low_size &&
        set_memory(vm, 1, VM_HIGH_RAM_START, mem_size - vm->low_size, vm->mem + vm->low_size, err) < 0)
        return -1;
    return 0;
}

void vm_destroy(struct vm *vm)
{
    if (vm->mem)
        munmap(vm->mem, vm->mem_size);
    if (vm->vm_fd >= 0)
        close(vm->vm_fd);
    if (vm->kvm_fd >= 0)
        close(vm->kvm_fd);
    if (vm->stop_efd >= 0)
        close(vm->stop_efd);
    bus_destroy(&vm->pio);
    bus_destroy(&vm->mmio);
    free(vm->fatal);
    pthread_mutex_destroy(&vm->stop_lock);
    vm->mem = NULL;
    vm->vm_fd = vm->kvm_fd = vm->stop_efd = -1;
}
