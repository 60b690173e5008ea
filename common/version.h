/* common/version.h: the hypr version, shared by the CLI and the daemon (so
 * `hypr version` shows both sides from one source). HYPR_GIT_COMMIT comes
 * from the Makefile (git rev-parse), "unknown" outside a checkout. */
#ifndef HYPR_COMMON_VERSION_H
#define HYPR_COMMON_VERSION_H

#define HYPR_VERSION "0.1.0"
#ifndef HYPR_GIT_COMMIT
#define HYPR_GIT_COMMIT "unknown"
#endif

#endif
