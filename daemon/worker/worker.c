/* SPDX-License-Identifier: MIT */
/* worker - see worker.h. */
#include "worker.h"

#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "bpfview.h"
#include "clock.h"
#include "fdpass.h"
#include "http.h"
#include "ipc.h"
#include "log.h"
#include "poller.h"
#include "render.h"
#include "render_bpf.h"
#include "schedstat.h"
#include "snapshot.h"

struct wvm {
	struct vm_meta *meta;
	int pidfd;
	bool gone;
	uint64_t expires_ns; /* gone: when its series are dropped */
	size_t n_src;
	struct source **src;
};

struct worker {
	const struct config *cfg;
	int ipc_fd, timer_fd, signal_fd, epoll_fd;
	int beat_fd;		       /* timerfd: IPC_STATUS to the helper (its watchdog pings) */
	uint32_t sync_seq;	       /* the last IPC_SYNC handled */
	uint32_t told_vms, told_vcpus; /* as the helper last heard */
	bool recount;		       /* a VM retired: tell the helper if the count moved */
	struct schema_cache cache;
	struct wvm **vms;
	size_t n_vms;
	bool dirty;		 /* sources changed: publish a new snapshot */
	bool bpf_added;		 /* vCPU sources came: look for their BPF slots */
	bool poll_dirty;	 /* sources changed or retired: rebuild polls */
	struct poll_list polls;	 /* what a tick reads: VMs not gone */
	unsigned type_conflicts; /* as last logged */
	bool stop;
	uint64_t history_bytes; /* what the sources' histories hold: history_max_mib */
	bool history_full_said; /* the cap was reached and logged */
	struct selfstats stats;
	struct snapshot_pub snaps; /* the current snapshot, for HTTP's page cache */
	struct http_server *http;
	const struct webtls *tls;  /* the helper's, loaded before the privilege drop; NULL: none */
	struct stat_filter filter; /* [metrics] include/exclude/histograms: snapshots and pages */
	struct render_bpf render_bpf; /* [metrics] reasons_*: the exit telemetry's families */
	struct bpfview *bpf;	      /* the exit telemetry maps, once the helper sends them */
	struct render_config render;  /* how every page is shaped; HTTP borrows it */
	/* epoll tags for the fixed fds (only their addresses matter); VM pidfds
	 * carry their struct wvm pointer */
	char tag_ipc, tag_timer, tag_signal, tag_beat;
};

static int epoll_add(struct worker *w, int fd, void *ptr)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = ptr };

	return epoll_ctl(w->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static struct wvm *find_vm(struct worker *w, uint32_t id)
{
	for (size_t i = 0; i < w->n_vms; i++)
		if (w->vms[i]->meta->id == id)
			return w->vms[i];
	return NULL;
}

/*
 * Tell the helper how many sources are polled: answers IPC_SYNC, beats
 * from this loop (the helper turns each into systemd's WATCHDOG=1, so a
 * loop that stops beating gets the service restarted), and news of a
 * change. MSG_DONTWAIT: a helper that does not read must not stall us.
 */
static void count_sources(const struct worker *w, uint32_t *vms, uint32_t *vcpus)
{
	*vms = *vcpus = 0;
	for (size_t i = 0; i < w->n_vms; i++) {
		if (w->vms[i]->gone)
			continue;
		(*vms)++;
		for (size_t j = 0; j < w->vms[i]->n_src; j++)
			*vcpus += w->vms[i]->src[j]->vcpu >= 0;
	}
}

static void send_status(struct worker *w)
{
	struct ipc_status m = { .hdr = { IPC_STATUS, sizeof(m) }, .sync_seq = w->sync_seq };

	count_sources(w, &m.n_vms, &m.n_vcpus);
	if (send(w->ipc_fd, &m, sizeof(m), MSG_DONTWAIT | MSG_NOSIGNAL) == sizeof(m)) {
		w->told_vms = m.n_vms;
		w->told_vcpus = m.n_vcpus;
	}
}

static void free_vm(struct wvm *vm)
{
	for (size_t i = 0; i < vm->n_src; i++) {
		source_close_fd(vm->src[i]); /* now, not when the last scrape lets go */
		source_unref(vm->src[i]);
	}
	if (vm->pidfd >= 0)
		close(vm->pidfd);
	vm_meta_unref(vm->meta);
	free(vm->src);
	free(vm);
}

/* What a VM's histories held comes back to the budget when it goes. */
static void forget_history(struct worker *w, const struct wvm *vm)
{
	for (size_t i = 0; i < vm->n_src; i++)
		if (vm->src[i]->hist)
			w->history_bytes -= ring_bytes(vm->src[i]->hist);
}

static void drop_vm_at(struct worker *w, size_t i)
{
	log_event(
	    LOG_LVL_INFO,
	    &(struct log_fields){ w->vms[i]->meta->name, w->vms[i]->meta->pid, "grace_ended" },
	    "vm \"%s\" (pid %d): series dropped, %zu stats fds closed", w->vms[i]->meta->name,
	    (int)w->vms[i]->meta->pid, w->vms[i]->n_src);
	forget_history(w, w->vms[i]);
	free_vm(w->vms[i]);
	w->vms[i] = w->vms[--w->n_vms];
	w->dirty = true;
	w->poll_dirty = true;
}

static void sample_vm(struct worker *w, struct wvm *vm, uint64_t now)
{
	for (size_t i = 0; i < vm->n_src; i++)
		if (poller_sample(vm->src[i], now) < 0)
			stat_add(&w->stats.read_errors, 1);
}

/* The vCPU threads' schedstat files the helper sent (none: no work). */
static void sample_schedstat(struct worker *w)
{
	for (size_t i = 0; i < w->n_vms; i++)
		for (size_t j = 0; !w->vms[i]->gone && j < w->vms[i]->n_src; j++)
			schedstat_sample(w->vms[i]->src[j]); /* no fd: returns at once */
}

/* Join the live vCPU sources with their exit telemetry slots. */
static void join_bpf(struct worker *w)
{
	struct source **live;
	size_t n = 0;

	if (!bpfview_enabled(w->bpf))
		return;
	for (size_t i = 0; i < w->n_vms; i++)
		n += w->vms[i]->gone ? 0 : w->vms[i]->n_src;
	live = malloc((n ? n : 1) * sizeof(*live));
	if (!live)
		return; /* next tick */
	n = 0;
	for (size_t i = 0; i < w->n_vms; i++)
		for (size_t j = 0; !w->vms[i]->gone && j < w->vms[i]->n_src; j++)
			if (w->vms[i]->src[j]->vcpu >= 0)
				live[n++] = w->vms[i]->src[j];
	bpfview_join(w->bpf, live, n, w->bpf_added);
	w->bpf_added = false;
	free(live);
}

/* The VMM exited or unregistered: last sample, then a grace period. */
/* why: a sentence for the log; reason: its label (KVMSTATD_REASON=) */
static void retire_vm(struct worker *w, struct wvm *vm, const char *why, const char *reason)
{
	if (vm->gone)
		return;
	sample_vm(w, vm, clock_mono_ns());
	for (size_t i = 0; i < vm->n_src; i++)
		bpfview_retire(w->bpf, vm->src[i]); /* its slot may serve another thread soon */
	vm->gone = true;
	w->poll_dirty = true;
	vm->expires_ns = clock_mono_ns() + (uint64_t)w->cfg->exit_grace_ms * 1000000u;
	if (vm->pidfd >= 0) {
		epoll_ctl(w->epoll_fd, EPOLL_CTL_DEL, vm->pidfd, NULL);
		close(vm->pidfd);
		vm->pidfd = -1;
	}
	stat_add(&w->stats.vms_exited, 1);
	w->recount = true;
	log_event(LOG_LVL_INFO, &(struct log_fields){ vm->meta->name, vm->meta->pid, reason },
		  "vm \"%s\" (pid %d): %s; series kept for %u ms", vm->meta->name,
		  (int)vm->meta->pid, why, w->cfg->exit_grace_ms);
}

static void expire_vms(struct worker *w, uint64_t now)
{
	for (size_t i = w->n_vms; i-- > 0;)
		if (w->vms[i]->gone && now >= w->vms[i]->expires_ns)
			drop_vm_at(w, i);
}

/* The flat list of the sources of VMs not gone; false when out of memory. */
static bool build_polls(struct worker *w)
{
	poll_list_clear(&w->polls);
	for (size_t i = 0; i < w->n_vms; i++)
		for (size_t j = 0; !w->vms[i]->gone && j < w->vms[i]->n_src; j++)
			if (poll_list_add(&w->polls, w->vms[i]->src[j]) < 0)
				return false;
	w->poll_dirty = false;
	return true;
}

static void tick(struct worker *w)
{
	uint64_t t0 = clock_mono_ns(), c0 = clock_ns(CLOCK_THREAD_CPUTIME_ID), wall, cpu;

	if (!w->poll_dirty || build_polls(w)) {
		stat_add(&w->stats.read_errors, poll_list_run(&w->polls, t0));
	} else { /* no memory for the list: the slow walk still works */
		for (size_t i = 0; i < w->n_vms; i++)
			if (!w->vms[i]->gone)
				sample_vm(w, w->vms[i], t0);
	}
	join_bpf(w);
	snapshot_tick(&w->snaps); /* pages rendered before these samples are stale */
	wall = clock_mono_ns() - t0;
	cpu = clock_ns(CLOCK_THREAD_CPUTIME_ID) - c0;
	stat_set(&w->stats.poll_wall_ns_last, wall);
	stat_set(&w->stats.poll_cpu_ns_last, cpu);
	stat_add(&w->stats.poll_wall_ns_sum, wall);
	stat_add(&w->stats.poll_cpu_ns_sum, cpu);
	stat_add(&w->stats.polls, 1);
	/* after the timing too: schedstat is /proc text, ~0.6 us a thread, not a stats fd */
	sample_schedstat(w);
	http_tick(w->http); /* after the timing: page housekeeping, not polling */
}

/* kvmstatd_history_seconds: the samples a history holds, less the writer's and the newest. */
static double history_window_s(const struct config *cfg)
{
	unsigned slots = config_history_slots(cfg);

	return slots < 2 ? 0 : (double)(slots - 2) * cfg->interval_ms / 1e3;
}

/* kvmstatd_history_bytes: what the sources' histories hold. */
static void count_history(struct worker *w, struct source *const *srcs, size_t n)
{
	uint64_t bytes = 0;

	for (size_t i = 0; i < n; i++)
		bytes += srcs[i]->hist ? ring_bytes(srcs[i]->hist) : 0;
	stat_set(&w->stats.history_bytes, bytes);
}

static int publish(struct worker *w)
{
	struct vm_meta **metas = calloc(w->n_vms + 1, sizeof(*metas));
	struct source **srcs;
	struct snapshot *snap;
	size_t n = 0;
	int rc = -ENOMEM;

	for (size_t i = 0; i < w->n_vms; i++)
		n += w->vms[i]->n_src;
	srcs = calloc(n + 1, sizeof(*srcs));
	if (!metas || !srcs)
		goto out;
	n = 0;
	for (size_t i = 0; i < w->n_vms; i++) {
		metas[i] = w->vms[i]->meta;
		for (size_t j = 0; j < w->vms[i]->n_src; j++)
			srcs[n++] = w->vms[i]->src[j];
	}
	count_history(w, srcs, n);
	rc = snapshot_build(&snap, metas, w->n_vms, srcs, n, &w->filter);
	if (rc == 0) {
		if (snap->type_conflicts != w->type_conflicts) /* say it once per change */
			log_warn("%u stats left out: their family exists with another type or unit",
				 snap->type_conflicts);
		w->type_conflicts = snap->type_conflicts;
		snapshot_publish(&w->snaps, snap);
		schema_cache_trim(&w->cache);
		w->dirty = false;
	}
out:
	free(metas);
	free(srcs);
	return rc;
}

/* Parse "kvm-<tid>/vcpu-<n>"; returns n or -EINVAL. */
static int vcpu_index_of(const char *id)
{
	unsigned tid;
	int vcpu;

	return statsid_parse(id, &tid, &vcpu) < 0 || vcpu < 0 ? -EINVAL : vcpu;
}

static bool vm_has_vcpu(const struct wvm *vm, int vcpu)
{
	for (size_t i = 0; i < vm->n_src; i++)
		if (vm->src[i]->vcpu == vcpu)
			return true;
	return false;
}

/*
 * Read, check and intern the schema of fd: its id (and vCPU index) and a
 * reference to the shared schema. -errno with err->why on refusal.
 */
static int load_schema(struct worker *w, const struct wvm *vm, int fd, enum stat_scope scope,
		       char *id, int *vcpu, struct schema **sc, struct schema_error *err)
{
	uint8_t *buf = NULL;
	bool created;
	size_t len;
	int rc;

	*vcpu = -1;
	rc = schema_read(fd, &buf, &len, err);
	if (rc == 0)
		rc = schema_parse_id(buf, len, id, err);
	if (rc == 0 && scope == SCOPE_VCPU && (*vcpu = vcpu_index_of(id)) < 0) {
		snprintf(err->why, sizeof(err->why), "id \"%.64s\" is not kvm-<tid>/vcpu-<n>", id);
		rc = -EINVAL;
	}
	if (rc == 0 && *vcpu >= 0 && vm_has_vcpu(vm, *vcpu)) {
		snprintf(err->why, sizeof(err->why), "vcpu %d is already registered", *vcpu);
		rc = -EEXIST;
	}
	if (rc == 0)
		rc = schema_cache_get(&w->cache, buf, len, scope, sc, &created, err);
	if (rc == 0 && created) {
		stat_add(&w->stats.stats_skipped_unknown, (*sc)->skips.unknown);
		stat_add(&w->stats.stats_skipped_invalid, (*sc)->skips.invalid);
		stat_add(&w->stats.stats_skipped_collision, (*sc)->skips.collision);
	}
	free(buf);
	return rc;
}

/*
 * A history for s, within [poll] history_max_mib for all of them: past
 * it the source is polled without one (its rates then come from the poll
 * ring's last two samples), counted, and said once per worker.
 */
static void give_history(struct worker *w, const struct wvm *vm, struct source *s)
{
	unsigned slots = config_history_slots(w->cfg);
	size_t need = slots ? ring_bytes_for(slots, s->schema->n_scalar) : 0;
	uint64_t cap = (uint64_t)w->cfg->history_max_mib << 20;

	if (need && w->history_bytes + need > cap) {
		stat_add(&w->stats.history_refused, 1);
		if (!w->history_full_said)
			log_warn("vm \"%s\" (pid %d): [poll] history_max_mib (%u) reached: this "
				 "and later sources have no history (said once)",
				 vm->meta->name, (int)vm->meta->pid, w->cfg->history_max_mib);
		w->history_full_said = true;
	} else if (need && source_set_history(s, slots) < 0) {
		log_warn("vm \"%s\" (pid %d): no memory for a history", vm->meta->name,
			 (int)vm->meta->pid);
	} else if (need) {
		w->history_bytes += ring_bytes(s->hist);
	}
}

/* Turn one checked fd into a source of vm; the fd is consumed either way. */
static int add_source(struct worker *w, struct wvm *vm, int fd, enum stat_scope scope,
		      char *kernel_id, size_t kid_size)
{
	struct schema_error err = { "" };
	struct schema *sc = NULL;
	struct source *s = NULL, **nv = NULL;
	char id[SCHEMA_ID_MAX];
	int vcpu, rc;

	rc = load_schema(w, vm, fd, scope, id, &vcpu, &sc, &err);
	if (rc == 0 && !(nv = realloc(vm->src, (vm->n_src + 1) * sizeof(*nv))))
		rc = -ENOMEM;
	if (nv)
		vm->src = nv;
	if (rc == 0)
		rc = source_new(&s, vm->meta, sc, fd, vcpu, w->cfg->ring_slots);
	if (rc < 0) {
		log_warn("vm \"%s\" (pid %d): %s stats fd refused: %s", vm->meta->name,
			 (int)vm->meta->pid, scope == SCOPE_VM ? "VM" : "vCPU",
			 err.why[0] ? err.why : strerror(-rc));
		stat_add(&w->stats.sources_refused, 1);
		schema_unref(sc);
		close(fd);
		return rc;
	}
	give_history(w, vm, s);
	if (kernel_id)
		snprintf(kernel_id, kid_size, "%s", id);
	snprintf(s->id, sizeof(s->id), "%s", id);
	w->bpf_added |= vcpu >= 0;
	vm->src[vm->n_src++] = s;
	poller_sample(s, clock_mono_ns()); /* a first sample before the next tick */
	w->dirty = true;
	w->poll_dirty = true;
	return 0;
}

/* A name still held by a VM in its grace period goes to the newcomer. */
static void free_name(struct worker *w, const char *name, char *out, size_t size, uint32_t id)
{
	snprintf(out, size, "%s", name);
	for (size_t i = w->n_vms; i-- > 0;) {
		if (strcmp(w->vms[i]->meta->name, name))
			continue;
		if (w->vms[i]->gone) /* dropped after this batch of events */
			w->vms[i]->expires_ns = 0;
		else /* the helper prevents this; stay valid regardless */
			snprintf(out, size, "%s-%u", name, id);
	}
}

/* label source="..." of kvm_vm_info (ipc_check bounds origin) */
static const char *origin_name(uint32_t origin)
{
	switch (origin) {
	case ORIGIN_DISCOVERED:
		return "discovered";
	case ORIGIN_BORROWED:
		return "borrowed";
	default:
		return "registered";
	}
}

static int on_add_vm(struct worker *w, const struct ipc_add_vm *m, int *fds, size_t n_fds)
{
	char name[sizeof(m->name) + 16], kernel_id[SCHEMA_ID_MAX] = "";
	struct wvm *vm = NULL, **nv;
	int rc = -ENOMEM;

	if (find_vm(w, m->vm_id)) /* the rest is checked by ipc_check */
		return -EBADMSG;
	free_name(w, m->name, name, sizeof(name), m->vm_id);
	nv = realloc(w->vms, (w->n_vms + 1) * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	w->vms = nv;
	vm = calloc(1, sizeof(*vm));
	if (!vm || vm_meta_new(&vm->meta, m->vm_id, m->pid, m->uid, name, "", m->comm,
			       origin_name(m->origin)) < 0)
		goto fail;
	vm_meta_set_created(vm->meta, m->created_ns);
	vm->pidfd = fds[0];
	fds[0] = -1;
	add_source(w, vm, fds[1], SCOPE_VM, kernel_id, sizeof(kernel_id));
	fds[1] = -1;
	for (size_t i = 2; i < n_fds; i++) {
		add_source(w, vm, fds[i], SCOPE_VCPU, NULL, 0);
		fds[i] = -1;
	}
	rc = vm_meta_set_kernel_id(vm->meta, kernel_id);
	if (rc < 0 || (rc = epoll_add(w, vm->pidfd, vm)) < 0)
		goto fail;
	w->vms[w->n_vms++] = vm;
	w->dirty = true;
	log_event(LOG_LVL_INFO, &(struct log_fields){ name, m->pid, "added" },
		  "vm \"%s\" (pid %d, uid %u, %s): %zu of %zu stats fds accepted", name,
		  (int)m->pid, (unsigned)m->uid, vm->meta->kernel_id, vm->n_src, n_fds - 1);
	w->poll_dirty = true;
	return 0;
fail:
	if (vm) {
		if (vm->meta) {
			forget_history(w, vm);
			free_vm(vm);
		} else {
			free(vm);
		}
	}
	return rc;
}

static int on_add_vcpus(struct worker *w, const struct ipc_add_vcpus *m, int *fds, size_t n_fds)
{
	struct wvm *vm = find_vm(w, m->vm_id);

	if (!vm) { /* retired already: the VMM exited while adding vCPUs */
		log_info("%zu vCPU stats fds for VM %u, which is gone: closed", n_fds, m->vm_id);
		return 0;
	}
	for (size_t i = 0; i < n_fds; i++) {
		if (add_source(w, vm, fds[i], SCOPE_VCPU, NULL, 0) == 0)
			created_set(&vm->src[vm->n_src - 1]->created, m->created_ns);
		fds[i] = -1;
	}
	return 0;
}

static int arm_beat(struct worker *w, unsigned ms)
{
	struct itimerspec its = { .it_interval = { ms / 1000, (long)(ms % 1000) * 1000000L } };

	its.it_value = its.it_interval;
	return timerfd_settime(w->beat_fd, 0, &its, NULL) < 0 ? -errno : 0;
}

static int on_bpf_maps(struct worker *w, const struct ipc_bpf_maps *m, const int *fds)
{
	int rc = bpfview_map(w->bpf, fds[0], fds[1], m->n_slots, m->slot_size);

	if (rc < 0) /* stats go on without: this is telemetry, not the service */
		log_err("exit telemetry maps not mapped: %s", strerror(-rc));
	else
		log_info("exit telemetry: %u vCPU slots mapped read-only", m->n_slots);
	stat_set(&w->stats.bpf_enabled, rc == 0);
	return 0;
}

/* Give each vCPU source of the VM its thread's schedstat fd. */
static void on_schedstat(struct worker *w, const struct ipc_schedstat *m, int *fds)
{
	struct wvm *vm = find_vm(w, m->vm_id);

	for (uint32_t i = 0; vm && !vm->gone && i < m->n; i++)
		for (size_t j = 0; j < vm->n_src; j++) {
			struct source *s = vm->src[j];

			if (s->vcpu == m->vcpu[i] && s->sched_fd < 0) {
				s->sched_fd = fds[i];
				fds[i] = -1;
				schedstat_sample(s);
				break;
			}
		}
}

static int dispatch(struct worker *w, const union ipc_msg *m, size_t len, int *fds, size_t n_fds)
{
	char why[128];

	if (ipc_check(m, len, n_fds, why, sizeof(why)) < 0) {
		log_err("from the helper: %s", why);
		return -EBADMSG;
	}
	switch (m->hdr.type) {
	case IPC_ADD_VM:
		return on_add_vm(w, &m->add_vm, fds, n_fds);
	case IPC_ADD_VCPUS:
		return on_add_vcpus(w, &m->add_vcpus, fds, n_fds);
	case IPC_REMOVE_VM: {
		struct wvm *vm = find_vm(w, m->remove_vm.vm_id);

		if (vm) /* else its VMM's exit retired it first */
			retire_vm(w, vm, "unregistered by its VMM", "unregistered");
		return 0;
	}
	case IPC_REJECTED:
		stat_add(&w->stats.rejected[m->rejected.reason], 1);
		return 0;
	case IPC_SYNC: /* everything before it is in: VMs loaded, HTTP served */
		w->sync_seq = m->sync.seq;
		send_status(w);
		return 0;
	case IPC_BPF_MAPS:
		return on_bpf_maps(w, &m->bpf_maps, fds);
	case IPC_SCHEDSTAT:
		on_schedstat(w, &m->schedstat, fds);
		return 0;
	default: /* IPC_HELLO: the helper's totals; counters continue across workers */
		for (int r = 0; r < REJ__COUNT; r++)
			stat_set(&w->stats.rejected[r], m->hello.rejected[r]);
		stat_set(&w->stats.vms_discovered, m->hello.discovered);
		stat_set(&w->stats.worker_starts, m->hello.worker_starts);
		w->stats.helper_start_time = (double)m->hello.helper_start_ns / 1e9;
		return arm_beat(w, m->hello.heartbeat_ms);
	}
}

static int on_ipc(struct worker *w)
{
	int fds[2 + IPC_MAX_VCPU_FDS];
	union ipc_msg m;
	size_t n_fds;
	int n, rc;

	n = fdpass_recv(w->ipc_fd, &m, sizeof(m), fds, sizeof(fds) / sizeof(fds[0]), &n_fds);
	if (n == -EAGAIN)
		return 0;
	if (n == -E2BIG || n == -EMSGSIZE || n == -EBADMSG) {
		/* e.g. out of fds (EMFILE truncates SCM_RIGHTS): lose this one, not all */
		log_err("a message from the helper was lost (%s); its fds are closed",
			n == -E2BIG ? "descriptors did not fit: out of fds?" : strerror(-n));
		stat_add(&w->stats.sources_refused, 1);
		return 0;
	}
	if (n <= 0) {
		fdpass_close_all(fds, n_fds); /* no bytes but fds: not ours to keep either */
		if (n == 0)
			log_info("helper closed the channel; exiting");
		else
			log_err("helper channel: %s; exiting", strerror(-n));
		return n == 0 ? -EPIPE : n;
	}
	rc = dispatch(w, &m, (size_t)n, fds, n_fds);
	fdpass_close_all(fds, n_fds); /* whatever a handler did not take */
	if (rc == -EBADMSG)
		log_err("malformed message type %u (%d bytes, %zu fds) from the helper; exiting",
			m.hdr.type, n, n_fds);
	return rc == -EBADMSG ? rc : 0;
}

static int on_timer(struct worker *w)
{
	uint64_t expirations;

	if (read(w->timer_fd, &expirations, sizeof(expirations)) != sizeof(expirations))
		return 0;
	if (expirations > 1)
		stat_add(&w->stats.missed_ticks, expirations - 1);
	tick(w);
	return 0;
}

static int on_beat(struct worker *w)
{
	uint64_t expirations;

	if (read(w->beat_fd, &expirations, sizeof(expirations)) == sizeof(expirations))
		send_status(w);
	return 0;
}

static int on_signal(struct worker *w)
{
	struct signalfd_siginfo si;

	if (read(w->signal_fd, &si, sizeof(si)) == sizeof(si) &&
	    (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)) {
		log_info("signal %u: stopping", si.ssi_signo);
		w->stop = true;
	}
	return 0;
}

static bool changed_sources(const struct worker *w)
{
	uint32_t vms, vcpus;

	count_sources(w, &vms, &vcpus);
	return vms != w->told_vms || vcpus != w->told_vcpus;
}

static int loop(struct worker *w)
{
	struct epoll_event ev[16];
	bool recount;
	int rc = 0;

	while (!w->stop && rc == 0) {
		int n = epoll_wait(w->epoll_fd, ev, 16, -1);

		if (n < 0 && errno != EINTR)
			return -errno;
		for (int i = 0; i < n && rc == 0; i++) {
			void *p = ev[i].data.ptr;

			if (p == &w->tag_ipc)
				rc = on_ipc(w);
			else if (p == &w->tag_timer)
				rc = on_timer(w);
			else if (p == &w->tag_signal)
				rc = on_signal(w);
			else if (p == &w->tag_beat)
				rc = on_beat(w);
			else
				retire_vm(w, p, "VMM exited", "vmm_exited");
		}
		/* frees happen here, never inside a batch: an event later in the
		 * batch may still name a VM (a stale pidfd event, say) */
		expire_vms(w, clock_mono_ns());
		recount = w->dirty || w->recount;
		if (rc == 0 && w->dirty)
			rc = publish(w);
		if (rc == 0 && recount && w->sync_seq && changed_sources(w))
			send_status(w); /* the helper's STATUS= line */
		w->recount = false;
	}
	return rc == -EPIPE ? 0 : rc;
}

/*
 * Everything that shapes a page, decided once from the config: the
 * [metrics] filter (compiled here once: snapshots and pages share it),
 * the exit telemetry's reasons settings and its (still unmapped) view.
 */
static int setup_render(struct worker *w, char *why, size_t why_size)
{
	int rc = stat_filter_init(&w->filter, w->cfg->metrics_include, w->cfg->metrics_exclude,
				  w->cfg->histograms, why, why_size);

	if (rc == 0)
		rc = render_bpf_init(&w->render_bpf, w->cfg, why, why_size);
	if (rc == 0) {
		rc = bpfview_new(&w->bpf);
		if (rc < 0)
			snprintf(why, why_size, "exit telemetry view: %s", strerror(-rc));
	}
	w->render = (struct render_config){
		.opts = { .vcpu_sum = !strcmp(w->cfg->vcpu_series, "per_vm"),
			  .no_created = !w->cfg->created,
			  .max_series = w->cfg->max_series },
		.filter = &w->filter,
		.schedstat = config_schedstat(w->cfg),
		.bpf = &w->render_bpf,
		.view = w->bpf,
	};
	return rc;
}

static int setup(struct worker *w, int http_fd)
{
	struct itimerspec its = { 0 };
	struct http_config hc = {
		.listen_fd = http_fd,
		.cfg = w->cfg,
		.stats = &w->stats,
		.snapshots = &w->snaps,
		.render = &w->render,
		.tls = w->tls,
	};
	char why[160];
	sigset_t mask;
	int rc;

	/* the config was checked when it was read: only memory can fail here */
	rc = setup_render(w, why, sizeof(why));
	if (rc < 0) {
		log_err("[metrics]: %s", why);
		return rc;
	}
	w->stats.max_series = w->cfg->max_series;
	w->cache.no_histograms = !w->cfg->histograms;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &mask, NULL); /* before MHD's threads inherit it */
	/*
	 * Pages (MBs) and render scratch always in their own mappings, so a
	 * freed page goes back to the kernel: glibc's dynamic threshold would
	 * otherwise rise to a page's size after the first free and keep later
	 * pages in arenas that never shrink (RSS = the largest page ever).
	 */
	mallopt(M_MMAP_THRESHOLD, 1 << 20);
	sigdelset(&mask, SIGPIPE);
	w->signal_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	w->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	w->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	w->beat_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (w->signal_fd < 0 || w->timer_fd < 0 || w->epoll_fd < 0 || w->beat_fd < 0)
		return -errno;
	its.it_interval.tv_sec = w->cfg->interval_ms / 1000;
	its.it_interval.tv_nsec = (long)(w->cfg->interval_ms % 1000) * 1000000L;
	its.it_value = its.it_interval;
	if (timerfd_settime(w->timer_fd, 0, &its, NULL) < 0)
		return -errno;
	if ((rc = epoll_add(w, w->ipc_fd, &w->tag_ipc)) < 0 ||
	    (rc = epoll_add(w, w->timer_fd, &w->tag_timer)) < 0 ||
	    (rc = epoll_add(w, w->signal_fd, &w->tag_signal)) < 0 ||
	    (rc = epoll_add(w, w->beat_fd, &w->tag_beat)) < 0)
		return rc;
	return http_start(&w->http, &hc);
}

int worker_run(const struct config *cfg, const struct webtls *tls, int ipc_fd, int http_fd)
{
	struct worker w = {
		.cfg = cfg,
		.tls = tls,
		.ipc_fd = ipc_fd,
		.timer_fd = -1,
		.signal_fd = -1,
		.epoll_fd = -1,
		.beat_fd = -1,
	};
	struct timespec now;
	int rc;

	snapshot_pub_init(&w.snaps);
	clock_gettime(CLOCK_REALTIME, &now);
	w.stats.start_time = (double)now.tv_sec + (double)now.tv_nsec / 1e9;
	w.stats.history_s = history_window_s(cfg);
	w.stats.history_limit_bytes = (uint64_t)cfg->history_max_mib << 20;
	rc = setup(&w, http_fd);
	if (rc < 0)
		log_err("start-up failed: %s", strerror(-rc));
	else
		rc = publish(&w) < 0 ? -ENOMEM : loop(&w);
	http_stop(w.http);
	snapshot_pub_fini(&w.snaps);
	bpfview_free(w.bpf); /* no scrape left: HTTP has stopped */
	render_bpf_fini(&w.render_bpf);
	for (size_t i = 0; i < w.n_vms; i++)
		free_vm(w.vms[i]);
	free(w.vms);
	schema_cache_fini(&w.cache);
	stat_filter_free(&w.filter);
	if (w.signal_fd >= 0)
		close(w.signal_fd);
	if (w.timer_fd >= 0)
		close(w.timer_fd);
	if (w.epoll_fd >= 0)
		close(w.epoll_fd);
	if (w.beat_fd >= 0)
		close(w.beat_fd);
	poll_list_free(&w.polls);
	close(ipc_fd);
	return rc < 0 ? 1 : 0;
}
