// A bounded cache of spare objects for one thread (a worker's loop): take() reuses a spare one
// or allocates, give() makes the object a default-constructed one again and keeps it, up to
// `max_spare`, else frees it. For per-request contexts that live across a round trip: with
// hundreds in flight they overflow malloc's per-thread cache and every request paid malloc's
// slow path (bench/RESULTS.md, router profile).
#pragma once

#include <cstddef>
#include <memory>
#include <new>
#include <vector>

namespace cachetier {

template <class T>
class FreeList {
 public:
  explicit FreeList(size_t max_spare) : max_spare_(max_spare) {}
  FreeList(const FreeList&) = delete;
  FreeList& operator=(const FreeList&) = delete;

  T* take() {
    if (spare_.empty()) return new T();
    T* p = spare_.back().release();
    spare_.pop_back();
    return p;
  }

  void give(T* p) {
    if (spare_.size() >= max_spare_) {
      delete p;
      return;
    }
    // Destroy and construct in place: the object's own buffers are freed (a spare never holds
    // a big value), its storage is kept.
    p->~T();
    ::new (static_cast<void*>(p)) T();
    spare_.emplace_back(p);
  }

  size_t spare() const { return spare_.size(); }

 private:
  size_t max_spare_;
  std::vector<std::unique_ptr<T>> spare_;
};

}  // namespace cachetier
