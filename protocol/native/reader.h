// A single-pass msgpack reader over one frame body, for the native decoders' hot path.
//
// Why not msgpack-c's unpacker here: building msgpack-c's object tree and then walking it cost
// the native decoders about twice what the memcache text parser costs per request (profile in
// bench/RESULTS.md, "native reader"). This reader checks every declared size against the bytes
// that remain as it goes, allocates nothing, and returns views into the input. msgpack-c stays
// the reference: the unit tests read what its packer writes, and the native fuzz target checks
// that every body prescan() accepts also parses with msgpack-c.
//
// Every read returns false when the next object is not of the asked type or does not fit; the
// position is then unspecified and the caller gives up on the frame (use prescan() to tell a
// well-formed body with a wrong type from bytes that are not msgpack at all).
#pragma once

#include <cstdint>
#include <string_view>

namespace cachetier::native {

class MsgReader {
 public:
  explicit MsgReader(std::string_view in)
      : p_(reinterpret_cast<const uint8_t*>(in.data())), end_(p_ + in.size()) {}

  bool at_end() const { return p_ == end_; }

  // A non-negative integer of any msgpack integer encoding.
  // The positive fixint (field keys, ops, small ids) is the inlined fast path.
  bool uint(uint64_t& v) {
    if (p_ != end_ && static_cast<uint8_t>(*p_) <= 0x7f) {
      v = static_cast<uint8_t>(*p_++);
      return true;
    }
    return wide_uint(v);
  }
  [[gnu::noinline]] bool wide_uint(uint64_t& v) {
    if (p_ == end_) return false;
    uint8_t t = *p_;
    if (t >= 0xcc && t <= 0xcf) return fixed(1u << (t - 0xcc), v);
    if (t >= 0xd0 && t <= 0xd3) {
      int64_t s;
      if (!sint(s) || s < 0) return false;
      v = static_cast<uint64_t>(s);
      return true;
    }
    return false;
  }

  // Any integer that fits in int64.
  bool sint(int64_t& v) {
    if (p_ == end_) return false;
    uint8_t t = *p_;
    if (t <= 0x7f || t >= 0xe0) {
      v = static_cast<int8_t>(t);
      ++p_;
      return true;
    }
    uint64_t u;
    if (t >= 0xcc && t <= 0xcf) {
      if (!fixed(1u << (t - 0xcc), u) || u > static_cast<uint64_t>(INT64_MAX)) return false;
      v = static_cast<int64_t>(u);
      return true;
    }
    if (t >= 0xd0 && t <= 0xd3) {
      unsigned n = 1u << (t - 0xd0);
      if (!fixed(n, u)) return false;
      // Sign-extend the n-byte two's complement value.
      unsigned shift = 64 - 8 * n;
      v = static_cast<int64_t>(u << shift) >> shift;
      return true;
    }
    return false;
  }

  // A bin or str object, as a view of its bytes.
  bool bytes(std::string_view& v) {
    if (p_ == end_) return false;
    uint8_t t = *p_;
    uint64_t n;
    if ((t & 0xe0) == 0xa0) {
      n = t & 0x1f;
      ++p_;
    } else if (t == 0xc4 || t == 0xd9) {
      if (!fixed(1, n)) return false;
    } else if (t == 0xc5 || t == 0xda) {
      if (!fixed(2, n)) return false;
    } else if (t == 0xc6 || t == 0xdb) {
      if (!fixed(4, n)) return false;
    } else {
      return false;
    }
    if (left() < n) return false;
    v = std::string_view(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    return true;
  }

  // An array header. Every element takes at least one byte, so a count larger than what is left
  // is refused here, before the caller sizes anything by it.
  bool array(uint32_t& n) { return header(0x90, 0xdc, 1, n); }
  // A map header (n pairs; each pair takes at least two bytes).
  bool map(uint32_t& n) { return header(0x80, 0xde, 2, n); }

  // Consumes a nil if one is next.
  bool nil() {
    if (p_ == end_ || *p_ != 0xc0) return false;
    ++p_;
    return true;
  }

  // Skips one whole object of any type, containers nested at most max_depth deep.
  bool skip(int max_depth);

 private:
  uint64_t left() const { return static_cast<uint64_t>(end_ - p_); }

  // Type byte then an n-byte big-endian number.
  bool fixed(unsigned n, uint64_t& v) {
    if (left() < 1 + uint64_t(n)) return false;
    uint64_t x = 0;
    for (unsigned i = 1; i <= n; ++i) x = (x << 8) | p_[i];
    p_ += 1 + n;
    v = x;
    return true;
  }

  bool header(uint8_t fix, uint8_t wide16, uint64_t min_bytes, uint32_t& n) {
    if (p_ == end_) return false;
    uint8_t t = *p_;
    uint64_t c;
    if ((t & 0xf0) == fix) {
      c = t & 0x0f;
      ++p_;
    } else if (t == wide16) {
      if (!fixed(2, c)) return false;
    } else if (t == wide16 + 1) {
      if (!fixed(4, c)) return false;
    } else {
      return false;
    }
    if (left() / min_bytes < c) return false;
    n = static_cast<uint32_t>(c);
    return true;
  }

  const uint8_t* p_;
  const uint8_t* end_;
};

}  // namespace cachetier::native
