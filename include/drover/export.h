/* drover: symbol visibility. The library is built with -fvisibility=hidden;
 * DV_API marks what it exports. */
#ifndef DROVER_EXPORT_H
#define DROVER_EXPORT_H

#if defined(__GNUC__)
#define DV_API __attribute__((visibility("default")))
#else
#define DV_API
#endif

#endif
