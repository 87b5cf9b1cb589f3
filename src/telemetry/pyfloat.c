/* Python's repr(float) in C: the shortest decimal string that reads back
 * to the same double, written in Python's style ("0.17", "29.7", "1.0",
 * "1e-05", "1e+16"). The seed prints load averages this way. */
#include "telemetry/telemetry.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Shortest round-trip digits of |x| > 0: digits into dig (no dot), the
 * decimal exponent of the first digit into *exp10. */
static int shortest_digits(double x, char *dig, int *exp10)
{
    char tmp[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, x);
        if (strtod(tmp, NULL) == x || prec == 17)
            break;
    }
    /* tmp is "d.ddde+XX" or "de+XX" */
    int n = 0;
    char *p = tmp;
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9')
            dig[n++] = *p;
    while (n > 1 && dig[n - 1] == '0')
        n--;
    dig[n] = '\0';
    *exp10 = atoi(p + 1);
    return n;
}

static int fixed(char *buf, size_t cap, const char *sign, const char *dig,
                 int n, int e)
{
    char out[64];
    int k = 0;
    if (e < 0) {
        k += snprintf(out + k, sizeof(out) - (size_t)k, "0.");
        for (int i = 0; i < -e - 1; i++)
            out[k++] = '0';
        k += snprintf(out + k, sizeof(out) - (size_t)k, "%s", dig);
    } else {
        for (int i = 0; i <= e; i++)
            out[k++] = (char)(i < n ? dig[i] : '0');
        out[k++] = '.';
        if (n > e + 1)
            k += snprintf(out + k, sizeof(out) - (size_t)k, "%s", dig + e + 1);
        else
            out[k++] = '0';
    }
    out[k] = '\0';
    return snprintf(buf, cap, "%s%s", sign, out);
}

int dv_telem_pyfloat(double x, char *buf, size_t cap)
{
    char dig[24];
    int e;
    if (isnan(x))
        return snprintf(buf, cap, "nan");
    if (isinf(x))
        return snprintf(buf, cap, x < 0 ? "-inf" : "inf");
    const char *sign = signbit(x) ? "-" : "";
    if (x == 0)
        return snprintf(buf, cap, "%s0.0", sign);
    int n = shortest_digits(fabs(x), dig, &e);
    /* Python switches to exponent form outside 1e-5 <= |x| < 1e16. */
    if (e < -4 || e >= 16) {
        char mant[32];
        if (n > 1)
            snprintf(mant, sizeof(mant), "%c.%s", dig[0], dig + 1);
        else
            snprintf(mant, sizeof(mant), "%c", dig[0]);
        return snprintf(buf, cap, "%s%se%c%02d", sign, mant, e < 0 ? '-' : '+',
                        abs(e));
    }
    return fixed(buf, cap, sign, dig, n, e);
}
