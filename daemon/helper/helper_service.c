/* SPDX-License-Identifier: MIT */
/*
 * helper_service - the helper's side of the service manager (systemd):
 * READY=1, STATUS= and WATCHDOG=1 made from what the worker reports, and
 * the reload on SIGHUP.
 *
 * Only the helper talks to systemd (NotifyAccess=main): the worker, which
 * parses and serves HTTP, could otherwise claim readiness, stop the
 * watchdog or name another main pid. It reports to the helper instead,
 * over the channel the helper already checks exactly (IPC_STATUS):
 *   - READY=1 once a worker has answered an IPC_SYNC sent after the
 *     start-up discovery scan: it then serves HTTP and holds every VM;
 *   - WATCHDOG=1 for every beat of the worker's poll loop, so a poller that
 *     hangs (or is stopped) misses its pings and systemd restarts the
 *     service; a hung helper pings no more either;
 *   - STATUS= when the number of VMs or vCPUs polled changes.
 * A reload checks the new configuration with the worker program
 * (workerexec_check), replaces the worker with one started from it, and says
 * READY=1 again once that one answers.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "helper_state.h"
#include "log.h"
#include "notify.h"
#include "reload.h"
#include "workerexec.h"

void helper_worker_status(struct helper *h, const struct ipc_status *m)
{
	bool changed = m->n_vms != h->status_vms || m->n_vcpus != h->status_vcpus;

	h->status_vms = m->n_vms;
	h->status_vcpus = m->n_vcpus;
	if (h->ready_pending && h->scanned && m->sync_seq == h->sync_seq) {
		h->ready_pending = false;
		notify_send("READY=1\nSTATUS=Polling %u VMs with %u vCPUs%s", m->n_vms, m->n_vcpus,
			    h->reload_note);
		log_debug("ready: polling %u VMs with %u vCPUs", m->n_vms, m->n_vcpus);
		h->reload_note[0] = '\0';
	} else if (changed && !h->ready_pending) {
		notify_send("STATUS=Polling %u VMs with %u vCPUs", m->n_vms, m->n_vcpus);
	}
	/* not before READY=1: a start-up is bounded by TimeoutStartSec= */
	if (!h->ready_pending && notify_watchdog_usec())
		notify_send("WATCHDOG=1");
}

unsigned helper_beat_ms(uint64_t usec)
{
	/* in microseconds: a period under 1 ms must not round to no beats */
	uint64_t quarter_ms = usec / 4000u;

	if (!usec)
		return 0;
	if (quarter_ms < HELPER_BEAT_MIN_MS)
		return HELPER_BEAT_MIN_MS;
	return quarter_ms > IPC_HEARTBEAT_MAX_MS ? IPC_HEARTBEAT_MAX_MS : (unsigned)quarter_ms;
}

void helper_watchdog_setup(struct helper *h)
{
	uint64_t usec = notify_watchdog_usec();

	h->heartbeat_ms = helper_beat_ms(usec);
	/* systemd enforces the period whether we can keep it or not: beat
	 * anyway (a ping that comes in time now and then is better than
	 * none), and say why the restarts will come */
	if (usec && usec <= (uint64_t)h->heartbeat_ms * 1000u)
		log_warn("WatchdogSec= is %llu us, no longer than the %u ms between our beats: "
			 "systemd will likely restart the service for a missed ping; raise it "
			 "above %u ms",
			 (unsigned long long)usec, h->heartbeat_ms, HELPER_BEAT_MIN_MS);
}

static void kept(const char *key, void *ctx)
{
	(void)ctx;
	log_warn("reload: %s changed, but takes effect only at a restart: keeping the running "
		 "value",
		 key);
}

/* The file again, with what cannot change put back (reload_merge). */
static int read_again(struct helper *h, struct config *next, char *err, size_t err_size)
{
	const struct workerexec_user user = { h->uid, h->gid };
	int rc;

	config_defaults(next);
	rc = config_load(next, h->config_path, err, err_size);
	if (rc == 0 && h->listen_override) /* the command line still wins */
		snprintf(next->listen, sizeof(next->listen), "%s", h->listen_override);
	if (rc == 0 && reload_merge(h->cfg, next, kept, NULL))
		snprintf(h->reload_note, sizeof(h->reload_note),
			 " (reloaded; some changes wait for a restart, see the log)");
	/* what only the worker program can check (the [basic_auth_users]
	 * hashes; the TLS texts are the start-up's): before the running
	 * worker is stopped */
	if (rc == 0 && (rc = workerexec_check(h->prog, next, &user)) < 0)
		snprintf(err, err_size, "the worker program refused it (see above)");
	if (rc < 0)
		h->reload_note[0] = '\0';
	return rc;
}

void helper_reload(struct helper *h)
{
	struct config *next = malloc(sizeof(*next));
	char err[512] = "out of memory";
	int rc = -ENOMEM;

	notify_send("RELOADING=1\nMONOTONIC_USEC=%llu",
		    (unsigned long long)(clock_mono_ns() / 1000u));
	log_info("SIGHUP: reading %s again", h->config_path);
	if (next)
		rc = read_again(h, next, err, sizeof(err));
	if (rc < 0) {
		/* the file may be half edited: keep serving with what works */
		log_err("reload: %s; still running with the configuration read before", err);
		if (!h->ready_pending)
			notify_send("READY=1\nSTATUS=Reload failed (see the log); polling %u VMs "
				    "with %u vCPUs",
				    h->status_vms, h->status_vcpus);
		free(next);
		return;
	}
	*h->cfg = *next;
	free(next);
	h->ready_pending = true;
	if (h->worker <= 0) { /* between a crash and its replacement: it gets the new one */
		log_info("configuration reloaded; the next worker starts with it");
		return;
	}
	/* the listening socket stays open here: scrapes wait in its backlog */
	helper_stop_worker(h);
	if ((rc = helper_start_worker(h, true)) < 0) {
		log_err("reload: cannot start a worker: %s", strerror(-rc));
		helper_worker_gone(h, "could not be started");
		return;
	}
	log_info("configuration reloaded: the new worker polls every VM the old one did");
}
