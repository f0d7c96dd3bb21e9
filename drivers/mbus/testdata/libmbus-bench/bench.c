/*
 * bench.c: the libmbus baseline for BenchmarkDecode. It decodes the same
 * frames the Go benchmark does, as far as the Go decoder goes: the frame
 * envelope and header (mbus_parse, mbus_frame_data_parse), the meter's
 * ID, manufacturer and medium, and every record normalised to SI units
 * with its function, storage, tariff, device, quantity and value
 * (mbus_parse_variable_record, mbus_parse_fixed_record: what libmbus's
 * "normalized" XML output is built from, without printing it).
 *
 * Usage: bench ROUNDS FILE.hex...
 * decodes every frame ROUNDS times and prints how many frames it decoded,
 * and how many a second of wall time and of CPU time, timed without the
 * start-up. A frame with a
 * record libmbus cannot normalise is left out (libmbus would print an
 * error for it in every round). drivers/mbus's BenchmarkDecode builds and
 * runs it (with the frames it decodes itself) when LIBMBUS_SRC names a
 * libmbus source tree.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mbus/mbus.h>

#define MAXFRAMES 256

static unsigned char frames[MAXFRAMES][512];
static size_t sizes[MAXFRAMES];

static double now(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int load(const char *path, unsigned char *out, size_t max)
{
    FILE *fp = fopen(path, "r");
    size_t n = 0;
    unsigned int b;
    if (fp == NULL)
        return -1;
    while (n < max && fscanf(fp, "%2x", &b) == 1)
        out[n++] = (unsigned char)b;
    fclose(fp);
    return (int)n;
}

static volatile double sink;

/* decode returns -1 if libmbus rejects the frame, else the number of
 * records it could not normalise (it prints each to stderr). */
static int decode(unsigned char *buf, size_t n)
{
    int failed = 0;
    mbus_frame frame;
    mbus_frame_data data;
    mbus_data_record *rec;
    mbus_record *r;
    const char *s;

    memset(&frame, 0, sizeof(frame));
    memset(&data, 0, sizeof(data));
    if (mbus_parse(&frame, buf, n) != 0)
        return -1;
    if (mbus_frame_data_parse(&frame, &data) != 0)
        return -1;
    if (data.type == MBUS_DATA_TYPE_FIXED) {
        mbus_data_fixed *f = &data.data_fix;
        sink += mbus_data_bcd_decode_hex(f->id_bcd, 4);
        r = mbus_parse_fixed_record(f->status, f->cnt1_type, f->cnt1_val);
        if (r != NULL) {
            sink += r->value.real_val;
            mbus_record_free(r);
        }
        r = mbus_parse_fixed_record(f->status, f->cnt2_type, f->cnt2_val);
        if (r != NULL) {
            sink += r->value.real_val;
            mbus_record_free(r);
        }
        return 0;
    }
    sink += mbus_data_bcd_decode_hex(data.data_var.header.id_bcd, 4);
    s = mbus_decode_manufacturer(data.data_var.header.manufacturer[0],
                                 data.data_var.header.manufacturer[1]);
    sink += s[0];
    s = mbus_data_variable_medium_lookup(data.data_var.header.medium);
    sink += s[0];
    for (rec = data.data_var.record; rec != NULL; rec = rec->next) {
        r = mbus_parse_variable_record(rec);
        if (r == NULL) {
            failed++;
            continue;
        }
        sink += r->is_numeric ? r->value.real_val : r->storage_number;
        mbus_record_free(r);
    }
    mbus_data_record_free(data.data_var.record);
    return failed;
}

int main(int argc, char *argv[])
{
    int nframes = 0, i;
    long rounds, round;
    double start, cpu, elapsed;

    if (argc < 3 || (rounds = atol(argv[1])) < 1) {
        fprintf(stderr, "usage: %s ROUNDS FILE.hex...\n", argv[0]);
        return 2;
    }
    for (i = 2; i < argc && nframes < MAXFRAMES; i++) {
        int n = load(argv[i], frames[nframes], sizeof(frames[0]));
        if (n <= 0) {
            fprintf(stderr, "%s: no hex bytes\n", argv[i]);
            return 1;
        }
        sizes[nframes] = (size_t)n;
        n = decode(frames[nframes], sizes[nframes]);
        if (n < 0) {
            fprintf(stderr, "%s: libmbus cannot decode it: %s\n", argv[i], mbus_error_str());
            return 1;
        }
        if (n > 0) {
            /* It would print an error on every round: leave it out. */
            fprintf(stderr, "%s: left out, libmbus cannot normalise %d of its records\n", argv[i], n);
            continue;
        }
        nframes++;
    }
    start = now(CLOCK_MONOTONIC);
    cpu = now(CLOCK_PROCESS_CPUTIME_ID);
    for (round = 0; round < rounds; round++)
        for (i = 0; i < nframes; i++)
            decode(frames[i], sizes[i]);
    elapsed = now(CLOCK_MONOTONIC) - start;
    cpu = now(CLOCK_PROCESS_CPUTIME_ID) - cpu;
    printf("%d frames %.0f frames/s %.0f frames/cpu-s\n", nframes,
           nframes * rounds / elapsed, nframes * rounds / cpu);
    return 0;
}
