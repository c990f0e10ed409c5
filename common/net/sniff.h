// Which protocol a connection speaks, from its first byte: one port serves them all.
//   0xFA            the native protocol (a frame's magic byte)
//   anything else   memcache text (classic and meta commands)
#pragma once

#include <cstdint>

namespace cachetier::net {

enum class Protocol : uint8_t { kMemcacheText, kNative };

inline constexpr uint8_t kNativeMagic = 0xFA;  // = native::kMagic (protocol/native/native.h)

inline Protocol sniff(uint8_t first_byte) {
  return first_byte == kNativeMagic ? Protocol::kNative : Protocol::kMemcacheText;
}

}  // namespace cachetier::net
