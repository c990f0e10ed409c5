// ByteBuffer: a growable byte array with a read offset, used for connection input (bytes not yet
// parsed) and output (responses not yet written). It owns its memory; views into it are valid
// until the next call that may grow or compact it. Appends are the hot path of every response,
// so the integer formatting here avoids snprintf.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "common/status.h"

namespace cachetier {

class ByteBuffer {
 public:
  ByteBuffer() = default;
  ~ByteBuffer() { std::free(data_); }
  ByteBuffer(const ByteBuffer&) = delete;
  ByteBuffer& operator=(const ByteBuffer&) = delete;
  ByteBuffer(ByteBuffer&& o) noexcept { swap(o); }
  ByteBuffer& operator=(ByteBuffer&& o) noexcept {
    swap(o);
    return *this;
  }

  // Unread bytes.
  const char* data() const { return data_ + rpos_; }
  char* data() { return data_ + rpos_; }
  size_t size() const { return wpos_ - rpos_; }
  bool empty() const { return wpos_ == rpos_; }
  std::string_view view() const { return {data(), size()}; }
  size_t capacity() const { return cap_; }

  // Marks n unread bytes as read. Resets to the start when everything is read, so a buffer
  // that is drained between batches never moves bytes.
  void consume(size_t n) {
    rpos_ += n;
    if (rpos_ == wpos_) rpos_ = wpos_ = 0;
  }
  void clear() { rpos_ = wpos_ = 0; }
  // Keeps the first n unread bytes, drops the rest (n <= size()): undoes appends.
  void truncate(size_t n) { wpos_ = rpos_ + n; }

  // Frees the memory of an empty buffer (idle connections should cost little).
  void release() {
    if (!empty()) return;
    std::free(data_);
    data_ = nullptr;
    cap_ = rpos_ = wpos_ = 0;
  }

  // Ensures room for n more bytes after the unread ones; returns where they go.
  // Out of memory is fatal (docs/design.md, habit 2).
  char* reserve(size_t n) {
    if (cap_ - wpos_ < n) grow(n);
    return data_ + wpos_;
  }
  size_t writable() const { return cap_ - wpos_; }
  char* write_ptr() { return data_ + wpos_; }
  // Publishes n bytes written at write_ptr().
  void commit(size_t n) { wpos_ += n; }

  void append(std::string_view s) {
    if (s.empty()) return;  // (an empty buffer has no storage: memcpy to null is undefined)
    std::memcpy(reserve(s.size()), s.data(), s.size());
    wpos_ += s.size();
  }
  void append(char c) {
    *reserve(1) = c;
    ++wpos_;
  }
  void append_u64(uint64_t v) {
    char tmp[20];
    char* end = tmp + sizeof(tmp);
    char* p = end;
    do {
      *--p = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v != 0);
    append(std::string_view(p, static_cast<size_t>(end - p)));
  }
  void append_i64(int64_t v) {
    if (v < 0) {
      append('-');
      append_u64(static_cast<uint64_t>(0) - static_cast<uint64_t>(v));
    } else {
      append_u64(static_cast<uint64_t>(v));
    }
  }

  void swap(ByteBuffer& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(cap_, o.cap_);
    std::swap(rpos_, o.rpos_);
    std::swap(wpos_, o.wpos_);
  }

 private:
  void grow(size_t n) {
    // Compact first: unread bytes move to the front when that makes enough room.
    size_t live = wpos_ - rpos_;
    if (rpos_ > 0 && cap_ - live >= n) {
      std::memmove(data_, data_ + rpos_, live);
      rpos_ = 0;
      wpos_ = live;
      return;
    }
    size_t want = cap_ == 0 ? 1024 : cap_ * 2;
    while (want < live + n) want *= 2;
    char* fresh = static_cast<char*>(std::malloc(want));
    if (fresh == nullptr) fatal_out_of_memory("ByteBuffer", want);
    if (live) std::memcpy(fresh, data_ + rpos_, live);
    std::free(data_);
    data_ = fresh;
    cap_ = want;
    rpos_ = 0;
    wpos_ = live;
  }

  char* data_ = nullptr;
  size_t cap_ = 0;
  size_t rpos_ = 0;
  size_t wpos_ = 0;
};

}  // namespace cachetier
