/* SPDX-License-Identifier: MIT */
/*
 * capture-stats-layout - save the layout of real KVM binary stats fds as
 * test data.
 *
 * Creates a VM and one vCPU on /dev/kvm, takes both stats fds
 * (KVM_GET_STATS_FD) and writes:
 *   OUTDIR/vm-stats-layout.bin    header + id + descriptors of the VM fd
 *   OUTDIR/vcpu-stats-layout.bin  header + id + descriptors of the vCPU fd
 *   OUTDIR/vcpu-stats-data.bin    one pread of the vCPU data block, taken
 *                                 after a tiny real-mode guest did 16 port
 *                                 writes and a HLT (so some counters move)
 * The layout files stop where the descriptor block (or the id string, if
 * it comes later) ends: the data block is not part of them.
 *
 * Usage: capture-stats-layout [OUTDIR]   (default tests/data)
 * Build: gcc -O2 -Wall -Wextra -o build/capture-stats-layout tools/capture-stats-layout.c
 * Exit status: 0 done, 77 no usable /dev/kvm (skip), 1 error.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef KVM_GET_STATS_FD
#define KVM_GET_STATS_FD _IO(KVMIO, 0xce)
#endif

#define MAX_LAYOUT (16u << 20) /* refuse absurd headers rather than malloc them */

static int write_file(const char *dir, const char *name, const void *p, size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "we");
	if (!f) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fwrite(p, 1, len, f) != len || fclose(f) != 0) {
		fprintf(stderr, "%s: write failed\n", path);
		return -1;
	}
	printf("wrote %s (%zu bytes)\n", path, len);
	return 0;
}

static int read_exact(int fd, void *p, size_t len, off_t off)
{
	ssize_t n = pread(fd, p, len, off);

	if (n != (ssize_t)len) {
		fprintf(stderr, "pread %zu bytes at %lld: %s\n", len, (long long)off,
			n < 0 ? strerror(errno) : "short read");
		return -1;
	}
	return 0;
}

/* Save the layout of one stats fd; with data_name, also one data block. */
static int capture(int fd, const char *dir, const char *layout_name, const char *data_name)
{
	struct kvm_stats_header h;
	uint64_t end, data_len = 0;
	uint8_t *buf = NULL;
	int rc = -1;

	if (read_exact(fd, &h, sizeof(h), 0) < 0)
		return -1;
	end = (uint64_t)h.desc_offset +
	      (uint64_t)h.num_desc * (sizeof(struct kvm_stats_desc) + h.name_size);
	if ((uint64_t)h.id_offset + h.name_size > end)
		end = (uint64_t)h.id_offset + h.name_size;
	if (end > MAX_LAYOUT || end < sizeof(h)) {
		fprintf(stderr, "implausible header (layout of %llu bytes)\n",
			(unsigned long long)end);
		return -1;
	}
	buf = malloc(end);
	if (!buf || read_exact(fd, buf, end, 0) < 0 || write_file(dir, layout_name, buf, end) < 0)
		goto out;
	if (data_name) {
		/* the data block: the furthest end of any descriptor's values */
		for (uint32_t i = 0; i < h.num_desc; i++) {
			struct kvm_stats_desc d;
			uint64_t e;

			memcpy(&d, buf + h.desc_offset + (uint64_t)i * (sizeof(d) + h.name_size),
			       sizeof(d));
			e = (uint64_t)d.offset + (uint64_t)d.size * 8;
			if (e > data_len)
				data_len = e;
		}
		free(buf);
		buf = malloc(data_len ? data_len : 1);
		if (!buf || read_exact(fd, buf, data_len, h.data_offset) < 0 ||
		    write_file(dir, data_name, buf, data_len) < 0)
			goto out;
	}
	rc = 0;
out:
	free(buf);
	return rc;
}

/*
 * Run a real-mode guest at 0x1000: 16 x "out 0x10, al", then "hlt". With no
 * in-kernel irqchip every OUT and the HLT exit to us.
 */
static int run_guest(int kvm, int vm, int vcpu)
{
	static const uint8_t code[] = {
		0xb9, 0x10, 0x00, /* mov cx, 16 */
		0xe6, 0x10,	  /* again: out 0x10, al */
		0xe2, 0xfc,	  /* loop again */
		0xf4,		  /* hlt */
	};
	struct kvm_userspace_memory_region region = { 0 };
	struct kvm_sregs sregs;
	struct kvm_regs regs = { 0 };
	struct kvm_run *run;
	void *mem;
	long run_size;
	int outs = 0;

	mem = mmap(NULL, 0x2000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (mem == MAP_FAILED || run_size <= 0)
		return -1;
	memcpy((uint8_t *)mem + 0x1000, code, sizeof(code));
	region.guest_phys_addr = 0;
	region.memory_size = 0x2000;
	region.userspace_addr = (uintptr_t)mem;
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		return -1;
	run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED || ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0)
		return -1;
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0)
		return -1;
	regs.rip = 0x1000;
	regs.rflags = 2;
	if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0)
		return -1;
	for (;;) {
		if (ioctl(vcpu, KVM_RUN, 0) < 0) {
			fprintf(stderr, "KVM_RUN: %s\n", strerror(errno));
			return -1;
		}
		if (run->exit_reason == KVM_EXIT_IO) {
			outs++;
			continue;
		}
		if (run->exit_reason == KVM_EXIT_HLT)
			break;
		fprintf(stderr, "unexpected exit reason %u\n", run->exit_reason);
		return -1;
	}
	printf("guest did %d port writes and a hlt\n", outs);
	return 0;
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "tests/data";
	int kvm, vm = -1, vcpu = -1, vm_stats = -1, vcpu_stats = -1, rc = 1;

	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0) {
		fprintf(stderr, "/dev/kvm: %s (skipped)\n", strerror(errno));
		return 77;
	}
	if (ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_BINARY_STATS_FD) <= 0) {
		fprintf(stderr, "KVM_CAP_BINARY_STATS_FD missing (skipped)\n");
		rc = 77;
		goto out;
	}
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0) {
		fprintf(stderr, "KVM_CREATE_VM: %s\n", strerror(errno));
		goto out;
	}
	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu < 0) {
		fprintf(stderr, "KVM_CREATE_VCPU: %s\n", strerror(errno));
		goto out;
	}
	vm_stats = ioctl(vm, KVM_GET_STATS_FD, NULL);
	vcpu_stats = ioctl(vcpu, KVM_GET_STATS_FD, NULL); /* before any KVM_RUN */
	if (vm_stats < 0 || vcpu_stats < 0) {
		fprintf(stderr, "KVM_GET_STATS_FD: %s\n", strerror(errno));
		goto out;
	}
	if (run_guest(kvm, vm, vcpu) < 0) {
		fprintf(stderr, "running the guest failed\n");
		goto out;
	}
	if (capture(vm_stats, dir, "vm-stats-layout.bin", NULL) < 0 ||
	    capture(vcpu_stats, dir, "vcpu-stats-layout.bin", "vcpu-stats-data.bin") < 0)
		goto out;
	rc = 0;
out:
	if (vcpu_stats >= 0)
		close(vcpu_stats);
	if (vm_stats >= 0)
		close(vm_stats);
	if (vcpu >= 0)
		close(vcpu);
	if (vm >= 0)
		close(vm);
	close(kvm);
	return rc;
}
