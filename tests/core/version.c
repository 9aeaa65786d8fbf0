/* tests/core/version.c: aw_version() and aw_version_string() report the
 * version meson.build declares (AW_TEST_PROJECT_VERSION, from
 * tests/meson.build), and agree with the headers' macros. */
#include <awith/version.h>
#include <criterion/criterion.h>

#include <stdio.h>

Test(version, string_is_the_project_version) {
    cr_assert_str_eq(aw_version_string(), AW_TEST_PROJECT_VERSION);
    cr_assert_str_eq(AW_VERSION_STRING, AW_TEST_PROJECT_VERSION);
}

Test(version, number_encodes_major_minor_patch) {
    int v = aw_version();
    cr_assert_eq(v, AW_VERSION_NUMBER);
    char buf[32];
    snprintf(buf, sizeof buf, "%d.%d.%d", v / 10000, v / 100 % 100, v % 100);
    cr_assert_str_eq(buf, aw_version_string());
    cr_assert_eq(v, AW_VERSION_MAJOR * 10000 + AW_VERSION_MINOR * 100 + AW_VERSION_PATCH);
}
