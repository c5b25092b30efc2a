/* SPDX-License-Identifier: MIT */
/*
 * qemu_name.c - the guest name on a QEMU command line; see qemu_name.h.
 *
 * QEMU (softmmu/vl.c, util/qemu-option.c) reads "-name" and "--name"
 * followed by one argument, a QemuOpts string whose implied first key is
 * "guest". All -name options merge into one set of options, so the last
 * "guest" given wins. Arguments are handled as [start, end) ranges, the
 * same code for argv strings and for the NUL-separated cmdline bytes.
 */
#include "qemu_name.h"

#include "escape.h"

#include <stdint.h>
#include <string.h>

/* The "guest" value being collected, unescaped, into the caller's buffer. */
struct guest {
	char *out;
	size_t size; /* of out, NUL included */
	size_t len;  /* bytes of the value so far; may pass size - 1 (too long) */
	bool set;
};

static void guest_begin(struct guest *g)
{
	g->len = 0;
	g->set = true;
}

/* Append n bytes; past the buffer only the length grows. */
static void guest_put(struct guest *g, const char *s, size_t n)
{
	if (g->len < g->size - 1) {
		size_t room = g->size - 1 - g->len;

		memcpy(g->out + g->len, s, n < room ? n : room);
	}
	g->len += n;
}

/*
 * A QemuOpts value from p: up to the first ',' that is not part of ",,",
 * each ",," standing for one ','. Stored in g unless g is NULL. Returns
 * where it stopped: at that ',' or at end.
 */
static const char *opt_value(const char *p, const char *end, struct guest *g)
{
	for (;;) {
		const char *comma = memchr(p, ',', (size_t)(end - p));

		if (!comma)
			comma = end;
		if (g)
			guest_put(g, p, (size_t)(comma - p));
		if (comma == end || comma + 1 == end || comma[1] != ',')
			return comma;
		if (g)
			guest_put(g, ",", 1);
		p = comma + 2;
	}
}

static bool key_is(const char *p, size_t len, const char *key)
{
	return len == strlen(key) && memcmp(p, key, len) == 0;
}

/*
 * One -name argument, element by element: "value" (first only: the
 * implied key "guest"), "key=value", or a flag "key" (key=on) / "nokey"
 * (key=off).
 */
static void parse_name_opts(const char *p, const char *end, struct guest *g)
{
	bool first = true;

	while (p < end) {
		size_t len = 0;

		while (p + len < end && p[len] != '=' && p[len] != ',')
			len++;
		if (p + len < end && p[len] == '=') {
			bool is_guest = key_is(p, len, "guest");

			if (is_guest)
				guest_begin(g);
			p = opt_value(p + len + 1, end, is_guest ? g : NULL);
		} else if (first) {
			guest_begin(g);
			p = opt_value(p, end, g);
		} else {
			if (key_is(p, len, "guest") || key_is(p, len, "noguest")) {
				guest_begin(g);
				guest_put(g, len == 5 ? "on" : "off", len == 5 ? 2 : 3);
			}
			p += len;
		}
		first = false;
		if (p < end && *p == ',')
			p++;
	}
}

/* "-name" or "--name", exactly: QEMU takes no "-name=..." form. */
static bool is_name_option(const char *p, const char *end)
{
	size_t len = (size_t)(end - p);

	if (len >= 2 && p[0] == '-' && p[1] == '-') {
		p++;
		len--;
	}
	return key_is(p, len, "-name");
}

static size_t guest_finish(struct guest *g)
{
	if (!g->set || g->len == 0 || g->len >= g->size || !escape_is_clean_utf8(g->out, g->len)) {
		g->out[0] = '\0';
		return 0;
	}
	g->out[g->len] = '\0';
	return g->len;
}

size_t qemu_name_from_argv(int argc, const char *const *argv, char *out, size_t out_size)
{
	struct guest g = { .out = out, .size = out_size };

	if (!out || out_size == 0)
		return 0;
	for (int i = 1; argv && i < argc && argv[i]; i++) {
		const char *a = argv[i];

		/* Anything not starting with '-' is a disk image to QEMU. */
		if (!is_name_option(a, a + strlen(a)))
			continue;
		if (i + 1 >= argc || !argv[i + 1])
			break;
		i++;
		parse_name_opts(argv[i], argv[i] + strlen(argv[i]), &g);
	}
	return guest_finish(&g);
}

size_t qemu_name_from_cmdline(const char *buf, size_t len, char *out, size_t out_size)
{
	struct guest g = { .out = out, .size = out_size };
	const char *p = buf, *end = buf ? buf + len : NULL;
	bool program = true, value_next = false;

	if (!out || out_size == 0)
		return 0;
	while (p && p < end) {
		const char *nul = memchr(p, '\0', (size_t)(end - p));

		if (!nul)
			break; /* cut short: not a whole argument */
		if (program) {
			program = false;
		} else if (value_next) {
			parse_name_opts(p, nul, &g);
			value_next = false;
		} else {
			value_next = is_name_option(p, nul);
		}
		p = nul + 1;
	}
	return guest_finish(&g);
}
