/* Prometheus text exposition format 0.0.4 writers (pure): "# HELP" and
 * "# TYPE" lines, samples name{label="value"} value, histograms as
 * _bucket{le=...} (cumulative, le="+Inf" equal to _count), _sum, _count. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "api/api.h"

void ms_prom_head(ms_buf_t *b, const char *name, const char *type, const char *help)
{
    ms_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Label values escape backslash, double quote and line feed. */
static void label_value(ms_buf_t *b, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\')
            ms_buf_append(b, "\\\\", 2);
        else if (*v == '"')
            ms_buf_append(b, "\\\"", 2);
        else if (*v == '\n')
            ms_buf_append(b, "\\n", 2);
        else
            ms_buf_append(b, v, 1);
    }
}

static void number(ms_buf_t *b, double v)
{
    if (isnan(v))
        ms_buf_printf(b, "NaN");
    else if (isinf(v))
        ms_buf_printf(b, v > 0 ? "+Inf" : "-Inf");
    else if (v == floor(v) && fabs(v) < 1e15)
        ms_buf_printf(b, "%.0f", v);
    else
        ms_buf_printf(b, "%.17g", v);
}

void ms_prom_sample(ms_buf_t *b, const char *name, const char *label, const char *value, double v)
{
    ms_buf_printf(b, "%s", name);
    if (label) {
        ms_buf_printf(b, "{%s=\"", label);
        label_value(b, value);
        ms_buf_append(b, "\"}", 2);
    }
    ms_buf_append(b, " ", 1);
    number(b, v);
    ms_buf_append(b, "\n", 1);
}

void ms_prom_sample_labels(ms_buf_t *b, const char *name, const char *const *kv, double v)
{
    ms_buf_printf(b, "%s", name);
    for (size_t i = 0; kv && kv[i] && kv[i + 1]; i += 2) {
        ms_buf_printf(b, "%s%s=\"", i ? "," : "{", kv[i]);
        label_value(b, kv[i + 1]);
        ms_buf_append(b, "\"", 1);
    }
    if (kv && kv[0] && kv[1])
        ms_buf_append(b, "}", 1);
    ms_buf_append(b, " ", 1);
    number(b, v);
    ms_buf_append(b, "\n", 1);
}

void ms_prom_histogram(ms_buf_t *b, const char *name, const char *stream, const double *bounds,
                       const ms_hls_latency_t *lat)
{
    for (int i = 0; i < MS_HLS_LAT_BUCKETS; i++) {
        ms_buf_printf(b, "%s_bucket{stream=\"", name);
        label_value(b, stream);
        ms_buf_printf(b, "\",le=\"");
        number(b, bounds[i]);
        ms_buf_printf(b, "\"} %llu\n", (unsigned long long)lat->buckets[i]);
    }
    ms_buf_printf(b, "%s_bucket{stream=\"", name);
    label_value(b, stream);
    ms_buf_printf(b, "\",le=\"+Inf\"} %llu\n", (unsigned long long)lat->count);
    ms_buf_printf(b, "%s_sum{stream=\"", name);
    label_value(b, stream);
    ms_buf_append(b, "\"} ", 3);
    number(b, lat->sum_ms);
    ms_buf_printf(b, "\n%s_count{stream=\"", name);
    label_value(b, stream);
    ms_buf_printf(b, "\"} %llu\n", (unsigned long long)lat->count);
}
