/* daemon/health.h: health checks of running VMs (daemon/health.c). Used by
 * the stack loop (which VMs to watch, their status) and by VM inspect. */
#ifndef HYPR_DAEMON_HEALTH_H
#define HYPR_DAEMON_HEALTH_H

#include <jansson.h>
#include <stdint.h>

#include "../common/error.h"
#include "../manifests/compose.h"
#include "../reconciler/plan.h"

struct hyprd;

int health_init(struct hyprd *d, hypr_error_t *err);
void health_fini(struct hyprd *d);
/* Watches VM id (started at started_ms, unix ms) with check hc; a call with
 * the same check and start time keeps the running state, a different one
 * (the VM restarted) starts over at `starting`. No-op when !hc->present. */
int health_watch(struct hyprd *d, const char *id, const char *name, const struct compose_health *hc,
                 int64_t started_ms);
void health_forget(struct hyprd *d, const char *id);
/* RC_HEALTH_NONE when the VM is not watched. */
enum rc_health health_status(struct hyprd *d, const char *id);
/* Inspect's State.Health, or NULL when not watched. */
json_t *health_json(struct hyprd *d, const char *id);

#endif
