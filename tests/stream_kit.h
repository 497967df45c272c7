/* The conformance kit over the streams of src/streams (tests/stream_kit.c)
 * and the vtable version and slot tests (tests/stream_slots.c) and the
 * kit's own tests (tests/stream_kit_self.c), added to check_stream. */
#ifndef SCIO_TESTS_STREAM_KIT_H
#define SCIO_TESTS_STREAM_KIT_H

#include <check.h>

void stream_kit_tests(Suite *s);
void stream_slot_tests(Suite *s);
void stream_kit_self_tests(Suite *s);

#endif
