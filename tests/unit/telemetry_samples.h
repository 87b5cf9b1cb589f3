/* Synthetic telemetry samples shared by the renderer and record tests. */
#ifndef DROVER_TESTS_TELEMETRY_SAMPLES_H
#define DROVER_TESTS_TELEMETRY_SAMPLES_H

#include <stdio.h>
#include <string.h>

#include "telemetry/telemetry.h"

/* A node with ngpus GPUs, utilisations from utils[], at time t seconds. */
static void make_sample(dv_telem_sample_t *s, const char *node, double t,
                        double load1, uint32_t ncpus, int ngpus,
                        const unsigned *utils)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->node, sizeof(s->node), "%s", node);
    s->time_ns = 1790000000000000000ull + (uint64_t)(t * 1e9);
    s->valid = DV_TELEM_LOAD | DV_TELEM_CPU | DV_TELEM_MEM | DV_TELEM_NCPU;
    s->load1 = load1;
    s->load5 = load1 / 2;
    s->load15 = 0.05;
    s->cpu_percent = 37.5;
    s->ncpus = ncpus;
    s->mem_total = 512ull << 30;
    s->mem_used = 100ull << 30;
    s->ngpus = ngpus;
    for (int i = 0; i < ngpus; i++) {
        dv_telem_gpu_t *g = &s->gpus[i];
        g->index = (uint32_t)i;
        g->vendor = DV_TELEM_VENDOR_NVIDIA;
        g->valid = DV_TELEM_GPU_UTIL | DV_TELEM_GPU_MEM | DV_TELEM_GPU_TEMP |
                   DV_TELEM_GPU_POWER;
        snprintf(g->name, sizeof(g->name), "NVIDIA A100-SXM4-40GB");
        snprintf(g->uuid, sizeof(g->uuid), "GPU-%08d", i);
        g->util_gpu = utils[i];
        g->util_mem = utils[i] / 2;
        g->mem_total = 40ull << 30;
        g->mem_used = (uint64_t)(utils[i] + 1) << 28;
        g->temp_c = 30 + (int)utils[i] / 3;
        g->power_mw = 60000 + utils[i] * 2500;
    }
}

#endif
