/* SPDX-License-Identifier: MIT */
/*
 * kvmstat_preload.c - LD_PRELOAD shim that registers the VMs and vCPUs of
 * an unmodified, dynamically linked VMM (QEMU) with kvmstatd.
 *
 *   LD_PRELOAD=/usr/local/lib/kvmstatd/libkvmstat-preload.so qemu-system-x86_64 ...
 *
 * It interposes ioctl() and acts on two requests only:
 *   KVM_CREATE_VM on /dev/kvm   -> KVM_GET_STATS_FD on the new VM fd,
 *                                  REGISTER_VM with no vCPUs
 *   KVM_CREATE_VCPU on that VM  -> KVM_GET_STATS_FD on the new vCPU fd at
 *                                  once (once the vCPU runs, the call waits
 *                                  for it), ADD_VCPUS
 * Every other call, KVM_RUN above all, costs two compares and a tail call.
 *
 * It must never change what the VMM sees: the real call's return value and
 * errno are passed through untouched; whatever goes wrong on the kvmstatd
 * side (no daemon, a full or silent socket, a refusal) is dropped, at most
 * logged with KVMSTAT_PRELOAD_DEBUG=1. Each event makes its own short
 * connection (200 ms for connect, send and reply each) and closes it, and
 * the shim closes its copies of the stats fds after sending (the helper
 * got duplicates), so the VMM's fd table ends as it would without the
 * shim. A VM whose registration failed is left alone: its vCPUs are not
 * tried. No thread is created; one mutex serialises the events (QEMU
 * creates vCPUs from their own threads at once). A forked child starts
 * with no VMs and never touches its parent's.
 *
 * Environment: KVMSTAT_SOCKET (registration socket, default
 * KVMSTAT_DEFAULT_SOCKET), KVMSTAT_NAME (the VM name; set but empty: no
 * name; unset: QEMU's -name from /proc/self/cmdline), KVMSTAT_PRELOAD_DEBUG
 * (1: one line per event on stderr; otherwise the shim prints nothing).
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "kvmstat_client.h"
#include "escape.h"
#include "qemu_name.h"

#define SHIM_EXPORT __attribute__((visibility("default")))
#define SHIM_TIMEOUT_MS 200
#define SHIM_MAX_VMS 4096	   /* VM fds tracked; past that, VMs go unregistered */
#define SHIM_CMDLINE_MAX (1 << 20) /* longer command lines give no name */
#define KVM_DEV_MAJOR 10	   /* /dev/kvm: misc device 10, minor 232 */
#define KVM_DEV_MINOR 232

typedef int (*ioctl_fn)(int fd, unsigned long request, ...);

/* A VM fd of this process, as the VMM got it from KVM_CREATE_VM. */
struct shim_vm {
	int fd;
	uint64_t handle;
	bool live; /* registered: its vCPUs are sent */
};

static struct {
	pthread_mutex_t lock;
	pid_t pid; /* the process the VM table belongs to */
	bool configured;
	bool debug;
	bool socket_too_long;
	char socket[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char name[KVMSTAT_NAME_MAX]; /* "" = none */
	uint64_t next_handle;
	struct shim_vm *vms;
	size_t n_vms, cap_vms;
} g = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* ------------------------------------------------------------------ real ioctl */

static int resolve_ioctl(int fd, unsigned long request, ...);

/* Until resolved, calls go through resolve_ioctl(); then straight to libc's. */
static ioctl_fn real_ioctl = resolve_ioctl;

/* Last resort when no ioctl follows us in the lookup order (cannot happen
 * with glibc, whose ioctl is always there): the system call itself. */
static int syscall_ioctl(int fd, unsigned long request, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, request);
	arg = va_arg(ap, void *);
	va_end(ap);
	return (int)syscall(SYS_ioctl, fd, request, arg);
}

static ioctl_fn lookup_real_ioctl(void)
{
	void *sym = dlsym(RTLD_NEXT, "ioctl");
	ioctl_fn fn = syscall_ioctl;

	/* dlsym returns an object pointer; POSIX guarantees the conversion. */
	if (sym)
		memcpy(&fn, &sym, sizeof(fn));
	__atomic_store_n(&real_ioctl, fn, __ATOMIC_RELAXED);
	return fn;
}

static int resolve_ioctl(int fd, unsigned long request, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, request);
	arg = va_arg(ap, void *);
	va_end(ap);
	return lookup_real_ioctl()(fd, request, arg);
}

static ioctl_fn get_real_ioctl(void)
{
	return __atomic_load_n(&real_ioctl, __ATOMIC_RELAXED);
}

/* ---------------------------------------------------------------- logging */

static void shim_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* One line, one write(2), only with KVMSTAT_PRELOAD_DEBUG=1. */
static void shim_log(const char *fmt, ...)
{
	char line[512];
	size_t len;
	ssize_t n;
	va_list ap;

	if (!g.debug)
		return;
	snprintf(line, sizeof(line), "kvmstat-preload[%d]: ", (int)getpid());
	len = strlen(line);
	va_start(ap, fmt);
	vsnprintf(line + len, sizeof(line) - len, fmt, ap);
	va_end(ap);
	len = strlen(line);
	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2;
	line[len++] = '\n';
	do
		n = write(STDERR_FILENO, line, len);
	while (n < 0 && errno == EINTR);
}

/* ---------------------------------------------------------- configuration */

/* /proc/self/cmdline, whole, in a malloc'd buffer; NULL on any failure. */
static char *read_cmdline(size_t *len_out)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);
	int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);

	if (!buf || fd < 0)
		goto fail;
	for (;;) {
		ssize_t n;

		if (len == cap) {
			char *nb = cap < SHIM_CMDLINE_MAX ? realloc(buf, cap * 2) : NULL;

			if (!nb)
				goto fail;
			buf = nb;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto fail;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	*len_out = len;
	return buf;
fail:
	if (fd >= 0)
		close(fd);
	free(buf);
	return NULL;
}

static void pick_name(void)
{
	const char *env = getenv("KVMSTAT_NAME");
	size_t len;
	char *cmdline;

	if (env) {
		len = strlen(env);
		if (len > 0 && len < sizeof(g.name) && escape_is_clean_utf8(env, len))
			memcpy(g.name, env, len + 1);
		else if (len > 0)
			shim_log("KVMSTAT_NAME is not a usable name (UTF-8, no control "
				 "characters, at most %d bytes): registering without a name",
				 KVMSTAT_NAME_MAX - 1);
		return;
	}
	cmdline = read_cmdline(&len);
	if (!cmdline) {
		shim_log("cannot read /proc/self/cmdline: registering without a name");
		return;
	}
	qemu_name_from_cmdline(cmdline, len, g.name, sizeof(g.name));
	free(cmdline);
}

/* Environment and name, read at the first VM (not in processes that never
 * make one). Called with the lock held. */
static void configure(void)
{
	const char *dbg = getenv("KVMSTAT_PRELOAD_DEBUG");
	const char *sock = getenv("KVMSTAT_SOCKET");

	if (g.configured)
		return;
	g.configured = true;
	g.debug = dbg && strcmp(dbg, "1") == 0;
	if (!sock || !*sock)
		sock = KVMSTAT_DEFAULT_SOCKET;
	if (strlen(sock) < sizeof(g.socket))
		memcpy(g.socket, sock, strlen(sock) + 1);
	else
		g.socket_too_long = true;
	pick_name();
}

/* ----------------------------------------------------------------- state */

/* The VM table belongs to one process: in a child (fork, _Fork, clone) it
 * starts empty. Called with the lock held. */
static void own_state(void)
{
	pid_t self = getpid();

	if (g.pid != self) {
		g.pid = self;
		g.n_vms = 0;
	}
}

static void atfork_prepare(void)
{
	pthread_mutex_lock(&g.lock);
}

static void atfork_parent(void)
{
	pthread_mutex_unlock(&g.lock);
}

static void atfork_child(void)
{
	g.pid = getpid();
	g.n_vms = 0;
	pthread_mutex_unlock(&g.lock);
}

__attribute__((constructor)) static void shim_init(void)
{
	lookup_real_ioctl();
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

static struct shim_vm *find_vm(int fd)
{
	for (size_t i = 0; i < g.n_vms; i++)
		if (g.vms[i].fd == fd)
			return &g.vms[i];
	return NULL;
}

static struct shim_vm *new_vm_slot(void)
{
	if (g.n_vms == g.cap_vms) {
		size_t cap = g.cap_vms ? g.cap_vms * 2 : 8;
		struct shim_vm *nv;

		if (cap > SHIM_MAX_VMS)
			return NULL;
		nv = realloc(g.vms, cap * sizeof(*nv));
		if (!nv)
			return NULL;
		g.vms = nv;
		g.cap_vms = cap;
	}
	return &g.vms[g.n_vms++];
}

static int connect_daemon(struct kvmstat_client **c)
{
	if (g.socket_too_long)
		return -ENAMETOOLONG;
	return kvmstat_client_open_timeout(c, g.socket, SHIM_TIMEOUT_MS);
}

static bool is_dev_kvm(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && S_ISCHR(st.st_mode) && major(st.st_rdev) == KVM_DEV_MAJOR &&
	       minor(st.st_rdev) == KVM_DEV_MINOR;
}

/* ----------------------------------------------------------------- events */

/*
 * An earlier VM with the same fd number: that fd was closed, so the VM is
 * most likely gone; release its registration rather than pin its kernel
 * memory for the rest of the process's life.
 */
static void drop_stale(struct kvmstat_client *c, struct shim_vm *vm)
{
	char reason[KVMSTAT_REASON_MAX];
	int rc;

	if (!vm->live)
		return;
	vm->live = false;
	rc = kvmstat_client_unregister_vm(c, vm->handle, reason, sizeof(reason));
	if (rc < 0)
		shim_log("VM handle %llu (fd %d reused): unregister failed: %s%s%s",
			 (unsigned long long)vm->handle, vm->fd, strerror(-rc), *reason ? ": " : "",
			 reason);
	else
		shim_log("VM handle %llu (fd %d reused): unregistered",
			 (unsigned long long)vm->handle, vm->fd);
}

static int register_vm(struct kvmstat_client *c, struct shim_vm *vm, int stats_fd)
{
	char reason[KVMSTAT_REASON_MAX];
	const char *name = g.name;
	int rc;

	rc = kvmstat_client_register_vm(c, vm->handle, name, stats_fd, NULL, 0, reason,
					sizeof(reason));
	/* The name is taken (a second VM of this process, or another VMM with
	 * the same -name): the VM is still worth its series, unnamed. */
	if (rc == -EEXIST && *name && kvmstat_client_ok(c)) {
		shim_log("VM fd %d: name \"%s\" refused (%s): trying without a name", vm->fd, name,
			 reason);
		name = "";
		rc = kvmstat_client_register_vm(c, vm->handle, name, stats_fd, NULL, 0, reason,
						sizeof(reason));
	}
	if (rc < 0)
		shim_log("VM fd %d: registration failed: %s%s%s", vm->fd, strerror(-rc),
			 *reason ? ": " : "", reason);
	else
		shim_log("VM fd %d: registered as handle %llu, name \"%s\"", vm->fd,
			 (unsigned long long)vm->handle, name);
	return rc;
}

static void vm_created(int kvm_fd, int vm_fd)
{
	struct kvmstat_client *c = NULL;
	struct shim_vm *vm;
	bool stale;
	int stats_fd, rc;

	if (!is_dev_kvm(kvm_fd))
		return;
	pthread_mutex_lock(&g.lock);
	own_state();
	configure();
	vm = find_vm(vm_fd);
	stale = vm && vm->live;
	if (!vm)
		vm = new_vm_slot();
	if (!vm) {
		shim_log("VM fd %d: more than %d VMs tracked: not registered", vm_fd, SHIM_MAX_VMS);
		goto out;
	}
	rc = connect_daemon(&c);
	if (rc == 0 && stale)
		drop_stale(c, vm);
	vm->fd = vm_fd;
	vm->handle = ++g.next_handle;
	vm->live = false;
	if (rc < 0) {
		shim_log("VM fd %d: cannot reach kvmstatd at %s: %s", vm_fd,
			 g.socket_too_long ? "(KVMSTAT_SOCKET too long)" : g.socket, strerror(-rc));
		goto out;
	}
	stats_fd = get_real_ioctl()(vm_fd, KVM_GET_STATS_FD, NULL);
	if (stats_fd < 0) {
		shim_log("VM fd %d: KVM_GET_STATS_FD: %s", vm_fd, strerror(errno));
		goto out;
	}
	vm->live = register_vm(c, vm, stats_fd) == 0;
	close(stats_fd);
out:
	kvmstat_client_close(c);
	pthread_mutex_unlock(&g.lock);
}

static void vcpu_created(int vm_fd, int vcpu_fd)
{
	char reason[KVMSTAT_REASON_MAX] = "";
	struct kvmstat_client *c = NULL;
	struct shim_vm *vm;
	int stats_fd, rc;

	pthread_mutex_lock(&g.lock);
	own_state();
	vm = find_vm(vm_fd);
	if (!vm || !vm->live)
		goto out;
	rc = connect_daemon(&c);
	if (rc < 0) {
		vm->live = false;
		shim_log("vCPU fd %d of VM fd %d: cannot reach kvmstatd: %s (no more vCPUs of this "
			 "VM are sent)",
			 vcpu_fd, vm_fd, strerror(-rc));
		goto out;
	}
	/* Now, before this vCPU's first KVM_RUN: later the call would wait for it. */
	stats_fd = get_real_ioctl()(vcpu_fd, KVM_GET_STATS_FD, NULL);
	if (stats_fd < 0) {
		shim_log("vCPU fd %d of VM fd %d: KVM_GET_STATS_FD: %s", vcpu_fd, vm_fd,
			 strerror(errno));
		goto out;
	}
	rc = kvmstat_client_add_vcpus(c, vm->handle, &stats_fd, 1, reason, sizeof(reason));
	close(stats_fd);
	if (rc == 0) {
		shim_log("vCPU fd %d of VM fd %d: added", vcpu_fd, vm_fd);
		goto out;
	}
	/* Unreachable daemon, or it forgot the VM: spare the other vCPUs the
	 * wait. A refusal of this one vCPU (a limit) leaves the VM as it is. */
	if (!kvmstat_client_ok(c) || rc == -ENOENT)
		vm->live = false;
	shim_log("vCPU fd %d of VM fd %d: not added: %s%s%s%s", vcpu_fd, vm_fd, strerror(-rc),
		 *reason ? ": " : "", reason,
		 vm->live ? "" : " (no more vCPUs of this VM are sent)");
out:
	kvmstat_client_close(c);
	pthread_mutex_unlock(&g.lock);
}

/* The rare path: do the real call, then act on a success. */
__attribute__((noinline)) static int create_call(int fd, unsigned long request, void *arg)
{
	int ret = get_real_ioctl()(fd, request, arg);
	int saved_errno = errno;
	int cancel_state;

	if (ret < 0)
		return ret;
	/* Cancellation points (connect, recvmsg) must not leave the lock held. */
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
	if (request == KVM_CREATE_VM)
		vm_created(fd, ret);
	else
		vcpu_created(fd, ret);
	pthread_setcancelstate(cancel_state, NULL);
	errno = saved_errno;
	return ret;
}

/* ------------------------------------------------------------------ ioctl */

/*
 * On x86-64 and AArch64 (Linux), a variadic call passes its integer and
 * pointer arguments exactly as a fixed one does, so ioctl is defined with a
 * fixed third argument: the hot path is then two compares and a jump,
 * without the variadic prologue. Elsewhere it reads the argument with
 * va_arg. Either way, the real ioctl gets the caller's three arguments.
 */
#if defined(__x86_64__) || defined(__aarch64__)
SHIM_EXPORT int ioctl(int fd, unsigned long request, void *arg);

SHIM_EXPORT int ioctl(int fd, unsigned long request, void *arg)
{
#else
SHIM_EXPORT int ioctl(int fd, unsigned long request, ...);

SHIM_EXPORT int ioctl(int fd, unsigned long request, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, request);
	arg = va_arg(ap, void *);
	va_end(ap);
#endif
	if (__builtin_expect(request == KVM_CREATE_VM || request == KVM_CREATE_VCPU, 0))
		return create_call(fd, request, arg);
	return get_real_ioctl()(fd, request, arg);
}
