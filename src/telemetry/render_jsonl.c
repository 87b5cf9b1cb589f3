/* The JSONL telemetry log: every sample as one JSON object on one line,
 * every field, the time in ISO-8601 UTC; a field that could not be read
 * is null. */
#include "telemetry/internal.h"

#include <stdio.h>
#include <time.h>

/* Strings of a sample are printable ASCII: only '"' and '\' need escapes. */
static void put_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', out);
        fputc(*s, out);
    }
    fputc('"', out);
}

static void put_number(FILE *out, const char *key, unsigned valid, double v)
{
    char num[40];
    dv_telem_pyfloat(v, num, sizeof(num));
    fprintf(out, ",\"%s\":%s", key, valid ? num : "null");
}

static void put_uint(FILE *out, const char *key, unsigned valid,
                     unsigned long long v)
{
    if (valid)
        fprintf(out, ",\"%s\":%llu", key, v);
    else
        fprintf(out, ",\"%s\":null", key);
}

static void put_gpu(FILE *out, const dv_telem_gpu_t *g)
{
    fprintf(out, "{\"index\":%u,\"vendor\":\"%s\",\"name\":", g->index,
            g->vendor == DV_TELEM_VENDOR_AMD ? "amd" : "nvidia");
    put_string(out, g->name);
    fputs(",\"uuid\":", out);
    put_string(out, g->uuid);
    put_uint(out, "util_gpu", g->valid & DV_TELEM_GPU_UTIL, g->util_gpu);
    put_uint(out, "util_mem", g->valid & DV_TELEM_GPU_UTIL, g->util_mem);
    put_uint(out, "mem_used", g->valid & DV_TELEM_GPU_MEM, g->mem_used);
    put_uint(out, "mem_total", g->valid & DV_TELEM_GPU_MEM, g->mem_total);
    if (g->valid & DV_TELEM_GPU_TEMP)
        fprintf(out, ",\"temp_c\":%d", (int)g->temp_c);
    else
        fputs(",\"temp_c\":null", out);
    put_number(out, "power_w", g->valid & DV_TELEM_GPU_POWER,
               g->power_mw / 1000.0);
    fputc('}', out);
}

int dv_telem_jsonl_write(FILE *out, const dv_telem_sample_t *s)
{
    time_t sec = (time_t)(s->time_ns / 1000000000u);
    struct tm tm;
    char when[40];
    gmtime_r(&sec, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(out, "{\"time\":\"%s.%06uZ\",\"node\":", when,
            (unsigned)(s->time_ns % 1000000000u / 1000u));
    put_string(out, s->node);
    put_number(out, "load1", s->valid & DV_TELEM_LOAD, s->load1);
    put_number(out, "load5", s->valid & DV_TELEM_LOAD, s->load5);
    put_number(out, "load15", s->valid & DV_TELEM_LOAD, s->load15);
    put_number(out, "cpu_percent", s->valid & DV_TELEM_CPU, s->cpu_percent);
    put_uint(out, "ncpus", s->valid & DV_TELEM_NCPU, s->ncpus);
    put_uint(out, "mem_used", s->valid & DV_TELEM_MEM, s->mem_used);
    put_uint(out, "mem_total", s->valid & DV_TELEM_MEM, s->mem_total);
    fputs(",\"gpus\":[", out);
    for (int i = 0; i < s->ngpus; i++) {
        if (i)
            fputc(',', out);
        put_gpu(out, &s->gpus[i]);
    }
    fputs("],\"note\":", out);
    if (s->note[0])
        put_string(out, s->note);
    else
        fputs("null", out);
    fputs("}\n", out);
    return ferror(out) ? -1 : 0;
}
