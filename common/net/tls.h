// TLS for the streams of cacheserver and cacherouter (OpenSSL 3), kept off the socket: the
// loop reads and writes ciphertext as before, and a TlsSession turns it into plaintext and
// back through a BIO of its own that reads the caller's bytes and writes into its buffer.
//
//   socket --cipher--> TlsSession::feed --plain--> the handler (in chunks of the read buffer)
//                            |  handshake records, alerts, tickets
//                            v
//   socket <--cipher-- `wire` <-- TlsSession::encrypt <--plain-- the handler's output
//
// TlsContext is one SSL_CTX built from files (certificate chain, key, CA, verify mode, minimum
// version, ciphers). TlsReloadable rebuilds it from the same files on request (SIGHUP,
// refresh_certs); a session keeps the context it was made with, so a reload drops nothing.
// Options follow memcached's names (-o ssl_chain_cert=...,ssl_key=...): apply_ssl_option().
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "common/buffer.h"
#include "common/function_ref.h"
#include "common/status.h"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;
typedef struct bio_st BIO;

namespace cachetier::net {

struct TlsOptions {
  std::string cert_chain;  // PEM: the certificate, then its chain
  std::string key;         // PEM private key; empty: it is in cert_chain
  std::string ca;          // PEM CA certificates the peer's certificate is checked against
  // memcached's ssl_verify_mode for a server: 0 none, 1 request (checked if sent), 2 require,
  // 3 once (require on the first handshake, not on renegotiation). A client verifies the
  // server unless verify_peer is false.
  int verify_mode = 0;
  bool verify_peer = true;
  std::string min_version = "tlsv1.2";  // tlsv1.2 or tlsv1.3 (memcached's 2 and 3 too)
  std::string ciphers;                  // OpenSSL's TLS 1.2 cipher list; empty: its default
  std::string server_name;              // client: SNI and the name the certificate must hold
};

// Sets the option memcached calls `key` (ssl_chain_cert, ssl_key, ssl_ca_cert,
// ssl_verify_mode, ssl_min_version, ssl_ciphers). kNotFound if `key` is not one of them,
// kInvalidArgument with the reason if `value` is bad.
Status apply_ssl_option(std::string_view key, std::string_view value, TlsOptions& o);

class TlsContext {
 public:
  // Errors name the file and OpenSSL's reason ("ssl_chain_cert /x.pem: No such file ...").
  static Result<std::shared_ptr<TlsContext>> make_server(const TlsOptions& o);
  static Result<std::shared_ptr<TlsContext>> make_client(const TlsOptions& o);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;
  SSL_CTX* get() const { return ctx_; }
  const TlsOptions& options() const { return options_; }
  bool server() const { return server_; }

 private:
  TlsContext(SSL_CTX* ctx, TlsOptions o, bool server)
      : ctx_(ctx), options_(std::move(o)), server_(server) {}
  // What both sides share: the SSL_CTX, minimum version, ciphers, CA, certificate and key.
  static Result<std::shared_ptr<TlsContext>> make(const TlsOptions& o, bool server);
  SSL_CTX* ctx_;
  TlsOptions options_;
  bool server_;
};

// The current context of a listener (or of a router's backend side), rebuilt from its files on
// reload(). Thread-safe.
class TlsReloadable {
 public:
  Status load(const TlsOptions& o, bool server);
  // A new context from the same files; on error the old one stays and the error is returned.
  Status reload();
  std::shared_ptr<TlsContext> current() const;
  // Unix seconds of the last successful load.
  int64_t loaded_at() const { return loaded_at_.load(std::memory_order_relaxed); }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<TlsContext> ctx_;
  TlsOptions options_;
  bool server_ = true;
  std::atomic<int64_t> loaded_at_{0};
};

// One connection's TLS state. Loop thread only.
class TlsSession {
 public:
  TlsSession(std::shared_ptr<TlsContext> ctx, std::string_view server_name = {});
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // A client starts the handshake: its first records go to `wire`.
  Status start_client(ByteBuffer& wire);
  // Ciphertext from the peer. Plaintext is handed to `plain` in chunks of up to `scratch_size`
  // bytes decrypted into `scratch` (plain may stop the loop by returning false); records to
  // send (handshake, alerts, tickets) are appended to `wire`. An error carries the reason.
  Status feed(std::string_view cipher, char* scratch, size_t scratch_size,
              FunctionRef<bool(std::string_view)> plain, ByteBuffer& wire);
  // Encrypts `plain` into `wire`. Only once handshake_done(): before, the caller keeps it.
  Status encrypt(std::string_view plain, ByteBuffer& wire);
  bool handshake_done() const { return done_; }
  // Some handshake bytes have arrived.
  bool handshake_begun() const { return seen_bytes_; }
  // The handshake completed during the last feed() (for the caller's counters, once).
  bool take_just_opened() {
    bool j = just_opened_;
    just_opened_ = false;
    return j;
  }
  bool resumed() const;
  // Peer closed the TLS session (close_notify).
  bool peer_closed() const { return peer_closed_; }
  // Describes the negotiated session ("TLSv1.3 TLS_AES_256_GCM_SHA384").
  std::string describe() const;

  // What the session's BIO reads from and writes to during a call (tls.cc).
  struct Io {
    std::string_view in;
    ByteBuffer* out = nullptr;
  };

 private:
  Status error(std::string_view what, int ret);

  std::shared_ptr<TlsContext> ctx_;
  SSL* ssl_ = nullptr;
  Io io_;
  ByteBuffer held_;  // ciphertext OpenSSL has not read yet (the caller stopped the loop)
  bool done_ = false, just_opened_ = false, peer_closed_ = false;
  bool seen_bytes_ = false, plaintext_peer_ = false;
};

}  // namespace cachetier::net
