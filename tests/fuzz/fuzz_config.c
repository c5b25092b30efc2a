/* SPDX-License-Identifier: MIT */
/*
 * fuzz_config - libFuzzer target: arbitrary bytes as a configuration file
 * (config_load_string) and as a listen address (config_parse_listen).
 *
 * Build and run: see tests/fuzz/README.md. Seeds: tests/fuzz/corpus/config.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), err[256], host[CONFIG_STR_MAX];
	struct config cfg;
	uint16_t port;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	config_defaults(&cfg);
	if (config_load_string(&cfg, text, "fuzz.ini", err, sizeof(err)) == 0) {
		/* whatever was accepted must be usable */
		if (config_parse_listen(cfg.listen, host, sizeof(host), &port) < 0 || port == 0)
			abort();
		if (cfg.socket_path[0] != '/' || cfg.user[0] == '\0')
			abort();
	} else if (memchr(err, '\0', sizeof(err)) == NULL) {
		abort();
	}
	if (config_parse_listen(text, host, sizeof(host), &port) == 0 && port == 0)
		abort();
	free(text);
	return 0;
}
