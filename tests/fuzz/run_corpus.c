/* SPDX-License-Identifier: MIT */
/*
 * run_corpus - replay fuzz inputs without libFuzzer: link with one
 * fuzz_*.c and run it on files (e.g. a corpus directory's files or a crash
 * reproducer). Lets gcc builds (and valgrind) run the same inputs.
 *
 *   run_corpus FILE...
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv)
{
	int failed = 0;

	for (int i = 1; i < argc; i++) {
		FILE *f = fopen(argv[i], "rb");
		uint8_t *buf = NULL;
		long n;

		if (!f || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
		    fseek(f, 0, SEEK_SET) != 0) {
			fprintf(stderr, "%s: cannot read\n", argv[i]);
			failed = 1;
			if (f)
				fclose(f);
			continue;
		}
		buf = malloc(n ? (size_t)n : 1);
		if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
			fprintf(stderr, "%s: cannot read\n", argv[i]);
			failed = 1;
		} else {
			LLVMFuzzerTestOneInput(buf, (size_t)n);
		}
		free(buf);
		fclose(f);
	}
	printf("%d input(s) replayed\n", argc - 1);
	return failed;
}
