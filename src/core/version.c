/* The library's version at run time (awith/version.h). The macros are the
 * headers' copy of meson.build's project version; meson setup fails if
 * they differ, so this is the version the library was built as. */
#include <awith/version.h>

int aw_version(void) { return AW_VERSION_NUMBER; }

const char *aw_version_string(void) { return AW_VERSION_STRING; }
