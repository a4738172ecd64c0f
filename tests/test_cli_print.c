// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * rcupoolctl's printing layer on its own: the escapes of JSON strings and
 * Prometheus label values (client names come from clients), the JSON
 * document's shape, the Prometheus families, the human table's alignment.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "print.h"

static char *buf;
static size_t len;

static FILE *mem(void)
{
	free(buf);
	buf = NULL;
	return open_memstream(&buf, &len);
}

static void test_escapes(void **state)
{
	FILE *f = mem();

	print_json_escaped(f, "a\"b\\c\nd\te\x01\x7f\xc3\xa9");
	fclose(f);
	assert_string_equal(buf,
			    "\"a\\\"b\\\\c\\nd\\te\\u0001\\u007f\xc3\xa9\"");
	f = mem();
	print_prom_label_escaped(f, "a\"b\\c\nd");
	fclose(f);
	assert_string_equal(buf, "\"a\\\"b\\\\c\\nd\"");
}

static struct stats_row client(uint32_t slot, const char *name, uint64_t held)
{
	struct stats_row r;

	memset(&r, 0, sizeof(r));
	stats_set_u(&r, PROTO_CLIENT_SLOT, slot);
	stats_set_u(&r, PROTO_CLIENT_PID, 100 + slot);
	stats_set_s(&r, PROTO_CLIENT_NAME, name);
	stats_set_u(&r, PROTO_CLIENT_HELD, held);
	stats_set_u(&r, PROTO_CLIENT_DENIED, 7);
	return r;
}

static int count(const char *s, const char *what)
{
	int n = 0;

	while ((s = strstr(s, what))) {
		n++;
		s += strlen(what);
	}
	return n;
}

static void test_json(void **state)
{
	struct stats_row a = client(0, "x\"y", 3), b = client(1, "z", 12345);
	FILE *f = mem();

	print_open(PRINT_JSON, f, true);
	print_open_object(NULL);
	print_uint("n", 2);
	print_table_open(&stats_client, "clients", NULL, NULL);
	print_row(&a);
	print_row(&b);
	print_table_close();
	print_open_array("empty");
	print_close_array();
	print_close_object();
	assert_int_equal(print_close(), 0);
	fclose(f);
	assert_string_equal(buf,
			    "{\"n\":2,\"clients\":[{\"slot\":0,\"pid\":100,"
			    "\"name\":\"x\\\"y\","
			    "\"held\":3,\"denied\":7},{\"slot\":1,\"pid\":101,"
			    "\"name\":\"z\","
			    "\"held\":12345,\"denied\":7}],\"empty\":[]}\n");
}

static void test_prometheus(void **state)
{
	struct stats_row a = client(0, "x\"y", 3), b = client(1, "z", 4);
	FILE *f = mem();

	print_open(PRINT_PROMETHEUS, f, false);
	print_table_open(&stats_client, "clients", NULL, NULL);
	print_row(&a);
	print_row(&b);
	print_table_close();
	assert_int_equal(print_close(), 0);
	fclose(f);
	/* One family per field with its HELP, samples together, counters
	 * _total; labels that stay across a client's restart (slot, name),
	 * the pid only on the info series. */
	assert_non_null(strstr(buf,
			       "# HELP rcupool_client_held Reserve pages the "
			       "client uses now (its counter, clamped to lent)\n"
			       "# TYPE rcupool_client_held gauge\n"
			       "rcupool_client_held{slot=\"0\","
			       "name=\"x\\\"y\"} 3\n"
			       "rcupool_client_held{slot=\"1\","
			       "name=\"z\"} 4\n"));
	assert_non_null(strstr(buf, "rcupool_client_info{slot=\"1\","
				    "pid=\"101\",name=\"z\"} 1\n"));
	assert_int_equal(count(buf, "pid=") , 2);
	assert_non_null(strstr(buf, "# TYPE rcupool_client_denied_total "
				    "counter\n"));
	/* Fields absent from every row get no family. */
	assert_null(strstr(buf, "rcupool_client_objects"));
}

/* Base units: _seconds (with the fraction), _bytes; human: unit words. */
static void test_units_in_output(void **state)
{
	struct stats_row r;
	FILE *f;

	memset(&r, 0, sizeof(r));
	stats_set_u(&r, PROTO_STATUS_UPTIME_USEC, 42800000);
	stats_set_u(&r, PROTO_STATUS_PAGE_SIZE, 4096);
	stats_set_u(&r, PROTO_STATUS_DEPLETIONS, 3);
	f = mem();
	print_open(PRINT_PROMETHEUS, f, false);
	print_record(&stats_status, "status", &r, PRINT_FIELDS);
	assert_int_equal(print_close(), 0);
	fclose(f);
	assert_non_null(strstr(buf, "# TYPE rcupool_status_uptime_seconds "
				    "gauge\nrcupool_status_uptime_seconds "
				    "42.800000\n"));
	assert_non_null(strstr(buf, "\nrcupool_status_page_size_bytes 4096\n"));
	assert_non_null(strstr(buf, "\nrcupool_status_depletions_total 3\n"));
	assert_null(strstr(buf, "usec"));

	f = mem();
	print_open(PRINT_HUMAN, f, false);
	print_record(&stats_status, "status", &r, PRINT_FIELDS);
	assert_int_equal(print_close(), 0);
	fclose(f);
	assert_non_null(strstr(buf, "  uptime "));
	assert_non_null(strstr(buf, " 42.8s  Time since the daemon started"));
	assert_non_null(strstr(buf, " 4KiB  Size of a reserve page"));
	assert_null(strstr(buf, "uptime_usec"));

	f = mem();
	print_open(PRINT_JSON, f, false);
	print_record(&stats_status, NULL, &r, PRINT_FIELDS);
	assert_int_equal(print_close(), 0);
	fclose(f);
	/* JSON keeps the field names and raw numbers. */
	assert_non_null(strstr(buf, "\"uptime_usec\": 42800000"));
	assert_non_null(strstr(buf, "\"page_size\": 4096"));
}

/* Nanoseconds (the reclaim engine's times): seconds with 9 digits. */
static void test_nsec_units(void **state)
{
	static const uint16_t cols[] = {PROTO_CLIENT_THROTTLED,
					PROTO_CLIENT_THROTTLED_NS,
					PROTO_CLIENT_GP_P99_NS, 0};
	struct stats_row r;
	FILE *f;

	memset(&r, 0, sizeof(r));
	stats_set_u(&r, PROTO_CLIENT_SLOT, 0);
	stats_set_s(&r, PROTO_CLIENT_NAME, "n");
	stats_set_u(&r, PROTO_CLIENT_THROTTLED, 7);
	stats_set_u(&r, PROTO_CLIENT_THROTTLED_NS, 1500000000);
	stats_set_u(&r, PROTO_CLIENT_GP_P99_NS, 2500000);
	f = mem();
	print_open(PRINT_PROMETHEUS, f, false);
	print_record(&stats_client, "client", &r, PRINT_FIELDS);
	assert_int_equal(print_close(), 0);
	fclose(f);
	assert_non_null(strstr(buf, "\nrcupool_client_throttled_total{"));
	assert_non_null(strstr(buf, "# TYPE rcupool_client_throttled_seconds_"
				    "total counter\n"));
	assert_non_null(strstr(buf, "} 1.500000000\n"));
	assert_non_null(strstr(buf, "# TYPE rcupool_client_gp_latency_p99_"
				    "seconds gauge\n"));
	assert_non_null(strstr(buf, "} 0.002500000\n"));
	assert_null(strstr(buf, "_ns"));

	f = mem();
	print_open(PRINT_HUMAN, f, false);
	print_table_open(&stats_client, NULL, "clients", cols);
	print_row(&r);
	print_table_close();
	assert_int_equal(print_close(), 0);
	fclose(f);
	assert_non_null(strstr(buf, " THROTTLED "));
	assert_non_null(strstr(buf, " THROTTLED_TIME "));
	assert_non_null(strstr(buf, " GP_LATENCY_P99\n"));
	assert_non_null(strstr(buf, "1.5s"));
	assert_non_null(strstr(buf, "2ms"));

	f = mem();
	print_open(PRINT_JSON, f, false);
	print_record(&stats_client, NULL, &r, PRINT_FIELDS);
	assert_int_equal(print_close(), 0);
	fclose(f);
	assert_non_null(strstr(buf, "\"throttled_ns\": 1500000000"));
	assert_non_null(strstr(buf, "\"gp_latency_p99_ns\": 2500000"));
}

static void test_human(void **state)
{
	struct stats_row a = client(0, "long-name", 3),
			 b = client(1, "z", 12345);
	static const uint16_t cols[] = {PROTO_CLIENT_NAME, PROTO_CLIENT_HELD,
					0};
	FILE *f = mem();

	print_open(PRINT_HUMAN, f, false);
	print_table_open(&stats_client, NULL, "clients", cols);
	print_row(&a);
	print_row(&b);
	print_table_close();
	print_open_object("ignored");
	print_uint("ignored", 1);
	print_close_object();
	assert_int_equal(print_close(), 0);
	fclose(f);
	assert_string_equal(buf, "clients\n"
				 "  NAME       HELD\n"
				 "  long-name     3\n"
				 "  z         12345\n");
}

static void test_bar(void **state)
{
	char b[64];

	assert_string_equal(print_bar(1, 4, 8, b, sizeof(b)), "[##......]");
	assert_string_equal(print_bar(0, 0, 4, b, sizeof(b)), "[....]");
	assert_string_equal(print_bar(9, 4, 4, b, sizeof(b)), "[####]");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escapes),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_prometheus),
		cmocka_unit_test(test_units_in_output),
		cmocka_unit_test(test_nsec_units),
		cmocka_unit_test(test_human),
		cmocka_unit_test(test_bar),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);

	free(buf);
	return r;
}
