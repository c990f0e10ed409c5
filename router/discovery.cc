// Service discovery by DNS. See discovery.h.
#include "router/discovery.h"

#include <algorithm>

namespace cachetier::router {

bool Discovery::wanted(const RouterConfig& c) {
  return std::any_of(c.discover.begin(), c.discover.end(),
                     [](const std::vector<std::string>& d) { return !d.empty(); });
}

RouterConfig Discovery::expand(const RouterConfig& file, std::vector<std::string>& errors) {
  RouterConfig out = file;
  for (size_t i = 0; i < out.shards.size() && i < file.discover.size(); ++i) {
    std::vector<std::string>& reps = out.shards[i].replicas;
    for (const std::string& name : file.discover[i]) {
      std::vector<std::string> found;
      std::string why;
      if (client::resolve_all(name, found, why)) {
        last_[name] = found;
      } else {
        ++failures;
        errors.push_back("shard " + out.shards[i].name + ": discover '" + name + "' " + why +
                         (last_.count(name) ? " (keeping its last addresses)" : ""));
        auto it = last_.find(name);
        if (it == last_.end()) continue;
        found = it->second;
      }
      for (const std::string& a : found) {
        if (reps.size() >= 16) {
          errors.push_back("shard " + out.shards[i].name + ": more than 16 replicas; " + a +
                           " and later addresses of '" + name + "' left out");
          break;
        }
        if (std::find(reps.begin(), reps.end(), a) == reps.end()) reps.push_back(a);
      }
    }
  }
  return out;
}

bool Discovery::same_replicas(const RouterConfig& a, const RouterConfig& b) {
  if (a.shards.size() != b.shards.size()) return false;
  for (size_t i = 0; i < a.shards.size(); ++i) {
    if (a.shards[i].replicas != b.shards[i].replicas) return false;
  }
  return true;
}

}  // namespace cachetier::router
