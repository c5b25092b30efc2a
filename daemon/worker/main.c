/* SPDX-License-Identifier: MIT */
/*
 * kvmstatd-worker - the unprivileged program the helper (kvmstatd) execs
 * for every worker it starts, and with --check-config to check the parts
 * of a configuration only this program can: the [web] TLS files (GnuTLS)
 * and the [basic_auth_users] hashes (libcrypt). The helper links neither.
 *
 * It is not started by hand: it expects its channel to the helper as fd 3
 * and a boot message there (boot.h) with the configuration, the PEM texts
 * and its fds. By then the helper's child has closed every other fd,
 * dropped every capability and set no_new_privs and the parent-death
 * signal; the environment is empty. Here, in this order: a name, not
 * dumpable (its memory will hold the TLS key), the boot message (from its
 * parent, before anything from outside), the sandbox (sandbox.h), the
 * self-test when asked, the [web] checks under the sandbox, then the
 * worker's loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#include "boot.h"
#include "help.h"
#include "log.h"
#include "sandbox.h"
#include "webauth.h"
#include "webtls.h"
#include "worker.h"

#define EXIT_REFUSED 2 /* the configuration: spawn_check reads it so */

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: kvmstatd-worker [--check-config]\n"
		"       kvmstatd-worker --metrics-reference | --version | --help\n"
		"The unprivileged half of kvmstatd, started by kvmstatd (its channel as fd 3).\n\n"
		"      --check-config    check [web] and [basic_auth_users] of the configuration\n"
		"                        the helper sends, then exit (0: valid, 2: invalid)\n"
		"      --metrics-reference  print the table of known KVM stats and their metrics\n"
		"                        (Markdown) and exit\n"
		"  -V, --version         print the version and exit\n"
		"  -h, --help            print this help and exit\n\n"
		"See kvmstatd(8).\n");
}

/* 1 in check mode, 0 to serve; exits for the options that only print. */
static int parse_args(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "check-config", no_argument, NULL, 'C' },
		{ "metrics-reference", no_argument, NULL, 'M' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c, check = 0;

	while ((c = getopt_long(argc, argv, "Vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'C':
			check = 1;
			break;
		case 'M':
			exit(help_write_reference(stdout) < 0 || fflush(stdout) ? 1 : 0);
		case 'V':
			printf("kvmstatd-worker %s\n", KVMSTATD_VERSION);
			exit(0);
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			exit(EXIT_REFUSED);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "kvmstatd-worker: unexpected argument \"%s\"\n", argv[optind]);
		exit(EXIT_REFUSED);
	}
	return check;
}

/* Is fd a helper's channel (a UNIX seqpacket socket)? */
static bool is_channel(int fd)
{
	int type = 0, domain = 0;
	socklen_t len = sizeof(int);

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
		return false;
	len = sizeof(int);
	return getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 && domain == AF_UNIX &&
	       type == SOCK_SEQPACKET;
}

/*
 * [web] and [basic_auth_users]: the TLS texts parse and match, this
 * libcrypt can check every hash. The PEM texts are tls's afterwards.
 * announce: say what the exporter will do (once, at the helper's start-up
 * check, not at every worker start). 0 or -errno, logged.
 */
static int prepare_web(struct boot *b, struct webtls *tls, bool announce)
{
	const struct config *cfg = &b->cfg;
	char err[512];
	int rc = 0;

	if (cfg->tls_cert_file[0] && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
		log_err("[web] tls_cert_file is set, but this libmicrohttpd was built without TLS");
		rc = -ENOTSUP;
	}
	for (unsigned i = 0; rc == 0 && i < cfg->n_auth_users; i++)
		if ((rc = webauth_hash_usable(cfg->auth_users[i].hash)) < 0)
			log_err(
			    "[basic_auth_users] %s: this system's libcrypt cannot check its hash",
			    cfg->auth_users[i].name);
	if (rc == 0) {
		rc = webtls_load(tls, cfg, b->pem.text[BOOT_CERT], b->pem.text[BOOT_KEY],
				 b->pem.text[BOOT_CA], err, sizeof(err));
		memset(&b->pem, 0, sizeof(b->pem)); /* tls's now */
		if (rc < 0)
			log_err("%s", err);
	}
	if (rc == 0 && announce && cfg->tls_cert_file[0])
		log_info("HTTPS only: %s or later, client certificates: %s", cfg->tls_min_version,
			 cfg->tls_client_auth_type);
	if (rc == 0 && announce && cfg->n_auth_users)
		log_info("basic auth: %u user(s), on every path", cfg->n_auth_users);
	if (rc == 0 && announce && cfg->n_auth_users && !cfg->tls_cert_file[0])
		log_warn(
		    "[basic_auth_users] without TLS ([web] tls_cert_file): passwords cross the "
		    "network in clear text");
	return rc;
}

/* Everything after the boot message. The exit status. */
static int run(struct boot *b, struct webtls *tls, bool check)
{
	int rc = 0;

	if (b->cfg.sandbox && (rc = sandbox_enter()) < 0) {
		log_err("cannot enter the sandbox: %s", strerror(-rc));
		return 1;
	}
	if (!check && (b->flags & BOOT_SELFTEST) && sandbox_selftest() != 0)
		return 1;
	if (prepare_web(b, tls, check) < 0)
		return EXIT_REFUSED;
	if (check)
		return 0;
	if (b->http_fd < 0) {
		log_err("the helper sent no HTTP socket");
		return 1;
	}
	return worker_run(&b->cfg, webtls_on(tls) ? tls : NULL, BOOT_CHANNEL_FD, b->http_fd);
}

int main(int argc, char **argv)
{
	int check = parse_args(argc, argv), rc;
	struct webtls tls = { 0 };
	struct boot b;
	char why[256];

	log_set_role("worker");
	/* execveat(AT_EMPTY_PATH) names a process after the fd on older kernels */
	prctl(PR_SET_NAME, "kvmstatd-worker", 0, 0, 0);
	/* a fresh exec is dumpable again; this memory will hold the TLS key */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	if (!is_channel(BOOT_CHANNEL_FD)) {
		fprintf(stderr,
			"kvmstatd-worker: no channel on fd %d: this program is started by "
			"kvmstatd\n",
			BOOT_CHANNEL_FD);
		return EXIT_REFUSED;
	}
	/* it crossed the exec; nothing of ours is to cross another */
	fcntl(BOOT_CHANNEL_FD, F_SETFD, FD_CLOEXEC);
	rc = boot_recv(BOOT_CHANNEL_FD, &b, why, sizeof(why));
	if (rc < 0) {
		log_err("cannot start: %s", why);
		return 1;
	}
	log_set_level(b.log_level <= LOG_LVL_DEBUG ? (enum log_level)b.log_level : LOG_LVL_DEBUG);
	log_use_journal_fd(b.journal_fd);
	rc = run(&b, &tls, check);
	webtls_free(&tls);
	boot_pem_free(&b.pem);
	return rc;
}
