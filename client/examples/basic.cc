// The client/README.md example: store a value, read it back, count, and show a miss.
// Build against an installed cachetier:
//   cmake:      find_package(cachetier REQUIRED) ... target_link_libraries(app cachetier::client)
//   pkg-config: c++ -std=c++20 basic.cc $(pkg-config --cflags --libs cachetier)
// Run: ./basic 127.0.0.1:11211 [more servers...]
#include <cachetier/client.h>

#include <cstdio>

int main(int argc, char** argv) {
  cachetier::ClientOptions options;
  for (int i = 1; i < argc; ++i) options.servers.push_back(argv[i]);
  if (options.servers.empty()) options.servers.push_back("127.0.0.1:11211");
  options.timeout_ms = 1000;

  auto created = cachetier::Client::create(options);
  if (!created.is_ok()) {
    std::fprintf(stderr, "bad options: %s\n", created.status().message().c_str());
    return 2;
  }
  cachetier::Client& cache = *created.value();

  // The connection comes up in the background: retry the first write briefly.
  cachetier::Status stored;
  for (int attempt = 0; attempt < 50; ++attempt) {
    stored = cache.set("greeting", "hello, cache", /*ttl_seconds=*/60, /*flags=*/1);
    if (stored.is_ok()) break;
  }
  if (!stored.is_ok()) {
    std::fprintf(stderr, "set failed: %s\n", stored.message().c_str());
    return 1;
  }
  auto hit = cache.get("greeting");
  if (!hit.is_ok() || !hit.value()) {
    std::fprintf(stderr, "get failed\n");
    return 1;
  }
  std::printf("greeting = %s (flags %u)\n", hit.value()->value.c_str(), hit.value()->flags);

  cache.set("visits", "0");
  auto visits = cache.incr("visits", 3);
  if (visits.is_ok() && visits.value()) {
    std::printf("visits = %llu\n", static_cast<unsigned long long>(*visits.value()));
  }

  auto miss = cache.get("no-such-key");  // a miss is a normal result, not an error
  std::printf("no-such-key: %s\n", miss.is_ok() && !miss.value() ? "miss" : "unexpected");
  return 0;
}
