/* ring_consumer.c: a consumer built the way a user of the installed C API builds one,
 * with nothing of the source tree:
 *
 *   cc ring_consumer.c $(pkg-config --cflags --libs uringest-ring) -o ring_consumer
 *   ring_consumer open NAME   # uringest_ring_open: prints "shards N streams M" or "error E"
 *   ring_consumer wait NAME   # the same after waiting up to 10 s for a live server
 *
 * Exit status: 0 with a ring, 1 with an error from the API, 2 for a bad command line. */
#include <stdio.h>
#include <string.h>
#include <uringest_ring.h>

int main(int argc, char** argv) {
  if (argc != 3 || (strcmp(argv[1], "open") != 0 && strcmp(argv[1], "wait") != 0)) {
    fprintf(stderr, "usage: ring_consumer open|wait NAME\n");
    return 2;
  }
  uringest_ring_reader* reader = NULL;
  const int err = strcmp(argv[1], "open") == 0
                      ? uringest_ring_open(argv[2], &reader)
                      : uringest_ring_wait_open(argv[2], 10000, &reader);
  if (err != 0) {
    printf("error %d (%s)\n", err, strerror(-err));
    return 1;
  }
  uringest_ring_stream_info streams[4];
  const int count = uringest_ring_list(reader, streams, 4);
  printf("shards %u streams %d\n", (unsigned)uringest_ring_shard_count(reader), count);
  uringest_ring_close(reader);
  return 0;
}
