// TLS contexts and sessions. See tls.h.
#include "common/net/tls.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <ctime>

#include "common/net/openssl_api.h"  // last: it makes OpenSSL's names macros

namespace cachetier::net {

namespace {

// OpenSSL's reason for the last error on this thread (and the queue emptied).
std::string openssl_reason() {
  std::string out;
  unsigned long e;
  while ((e = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    const char* r = ERR_reason_error_string(e);
    out += r != nullptr ? r : buf;
  }
  return out.empty() ? std::string("unknown TLS error") : out;
}

Status bad(std::string what) { return Status(StatusCode::kInvalidArgument, std::move(what)); }

int min_version_of(std::string_view v) {
  if (v == "tlsv1.2" || v == "2") return TLS1_2_VERSION;
  if (v == "tlsv1.3" || v == "3") return TLS1_3_VERSION;
  return 0;
}

// Settings both sides share: minimum version, ciphers, CA.
Status configure_common(SSL_CTX* ctx, const TlsOptions& o) {
  int minv = min_version_of(o.min_version);
  if (minv == 0) {
    return bad("ssl_min_version '" + o.min_version + "': want tlsv1.2 or tlsv1.3");
  }
  SSL_CTX_set_min_proto_version(ctx, minv);
  if (!o.ciphers.empty() && SSL_CTX_set_cipher_list(ctx, o.ciphers.c_str()) != 1) {
    return bad("ssl_ciphers '" + o.ciphers + "': " + openssl_reason());
  }
  if (!o.ca.empty() && SSL_CTX_load_verify_locations(ctx, o.ca.c_str(), nullptr) != 1) {
    return bad("ssl_ca_cert " + o.ca + ": " + openssl_reason());
  }
  // Replies are written as soon as they are ready; a record may hold a whole batch.
  SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
  return Status::ok();
}

Status load_identity(SSL_CTX* ctx, const TlsOptions& o) {
  if (o.cert_chain.empty()) return Status::ok();
  if (SSL_CTX_use_certificate_chain_file(ctx, o.cert_chain.c_str()) != 1) {
    return bad("ssl_chain_cert " + o.cert_chain + ": " + openssl_reason());
  }
  const std::string& key = o.key.empty() ? o.cert_chain : o.key;
  if (SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) != 1) {
    std::string why = openssl_reason();
    if (why.find("mismatch") != std::string::npos) {
      return bad("ssl_key " + key + " does not match ssl_chain_cert " + o.cert_chain);
    }
    return bad("ssl_key " + key + ": " + why);
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return bad("ssl_key " + key + " does not match ssl_chain_cert " + o.cert_chain);
  }
  return Status::ok();
}

}  // namespace

Status apply_ssl_option(std::string_view key, std::string_view value, TlsOptions& o) {
  if (key == "ssl_chain_cert") {
    o.cert_chain = value;
  } else if (key == "ssl_key") {
    o.key = value;
  } else if (key == "ssl_ca_cert") {
    o.ca = value;
  } else if (key == "ssl_ciphers") {
    o.ciphers = value;
  } else if (key == "ssl_min_version") {
    if (min_version_of(value) == 0) {
      return bad("ssl_min_version '" + std::string(value) + "': want tlsv1.2 or tlsv1.3");
    }
    o.min_version = value;
  } else if (key == "ssl_verify_mode") {
    int m = -1;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), m);
    if (ec != std::errc() || end != value.data() + value.size() || m < 0 || m > 3) {
      return bad("ssl_verify_mode '" + std::string(value) +
                 "': want 0 (none), 1 (request), 2 (require) or 3 (once)");
    }
    o.verify_mode = m;
  } else {
    return Status(StatusCode::kNotFound, "not a TLS option: " + std::string(key));
  }
  return Status::ok();
}

// ---- contexts ----

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

Result<std::shared_ptr<TlsContext>> TlsContext::make(const TlsOptions& o, bool server) {
  // Every session and BIO comes from a context: OpenSSL is opened here, on first use.
  if (Status st = openssl::load(); !st.is_ok()) return st;
  SSL_CTX* ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
  if (ctx == nullptr) return bad("TLS: " + openssl_reason());
  std::shared_ptr<TlsContext> c(new TlsContext(ctx, o, server));
  Status st = configure_common(ctx, o);
  if (st.is_ok()) st = load_identity(ctx, o);
  if (!st.is_ok()) return st;
  return c;
}

Result<std::shared_ptr<TlsContext>> TlsContext::make_server(const TlsOptions& o) {
  if (o.cert_chain.empty()) return bad("TLS needs a certificate: ssl_chain_cert=FILE");
  auto made = make(o, true);
  if (!made.is_ok()) return made;
  std::shared_ptr<TlsContext> c = made.value();
  SSL_CTX* ctx = c->get();
  if (o.verify_mode != 0 && o.ca.empty()) {
    return bad("ssl_verify_mode " + std::to_string(o.verify_mode) +
               " checks client certificates: it needs ssl_ca_cert=FILE");
  }
  int mode = SSL_VERIFY_NONE;
  if (o.verify_mode == 1) mode = SSL_VERIFY_PEER;
  if (o.verify_mode == 2) mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
  if (o.verify_mode == 3) {
    mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT | SSL_VERIFY_CLIENT_ONCE;
  }
  SSL_CTX_set_verify(ctx, mode, nullptr);
  if (!o.ca.empty()) {
    // The CA names a client is told to choose its certificate by.
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(o.ca.c_str());
    if (names != nullptr) SSL_CTX_set_client_CA_list(ctx, names);
    ERR_clear_error();
  }
  // Resumed sessions skip the certificate exchange (tickets; no server-side cache).
  static const unsigned char kSessionContext[] = "cachetier";
  SSL_CTX_set_session_id_context(ctx, kSessionContext, sizeof kSessionContext - 1);
  return c;
}

Result<std::shared_ptr<TlsContext>> TlsContext::make_client(const TlsOptions& o) {
  auto made = make(o, false);
  if (!made.is_ok()) return made;
  std::shared_ptr<TlsContext> c = made.value();
  SSL_CTX* ctx = c->get();
  if (o.verify_peer) {
    if (o.ca.empty() && SSL_CTX_set_default_verify_paths(ctx) != 1) {
      return bad("TLS: no CA to verify servers against (set a CA file): " + openssl_reason());
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  }
  return c;
}

Status TlsReloadable::load(const TlsOptions& o, bool server) {
  auto made = server ? TlsContext::make_server(o) : TlsContext::make_client(o);
  if (!made.is_ok()) return made.status();
  std::lock_guard lock(mu_);
  options_ = o;
  server_ = server;
  ctx_ = std::move(made.value());
  loaded_at_.store(static_cast<int64_t>(std::time(nullptr)), std::memory_order_relaxed);
  return Status::ok();
}

Status TlsReloadable::reload() {
  TlsOptions o;
  bool server;
  {
    std::lock_guard lock(mu_);
    o = options_;
    server = server_;
  }
  return load(o, server);
}

std::shared_ptr<TlsContext> TlsReloadable::current() const {
  std::lock_guard lock(mu_);
  return ctx_;
}

// ---- sessions ----

// The session's BIO: OpenSSL reads ciphertext straight from the bytes feed() was given and
// writes ciphertext straight into the caller's wire buffer, so neither side is copied through
// a memory BIO's own buffer (which also kept its high-water mark for as long as the
// connection lived).
namespace {
int bio_write(BIO* b, const char* data, size_t n, size_t* written) {
  auto* io = static_cast<TlsSession::Io*>(BIO_get_data(b));
  BIO_clear_retry_flags(b);
  if (io->out == nullptr) {  // outside feed/encrypt/start_client: nothing may be written
    BIO_set_retry_write(b);
    *written = 0;
    return 0;
  }
  io->out->append(std::string_view(data, n));
  *written = n;
  return 1;
}

int bio_read(BIO* b, char* data, size_t n, size_t* got) {
  auto* io = static_cast<TlsSession::Io*>(BIO_get_data(b));
  BIO_clear_retry_flags(b);
  if (io->in.empty()) {
    BIO_set_retry_read(b);  // more will come with the next read
    *got = 0;
    return 0;
  }
  size_t k = std::min(n, io->in.size());
  std::memcpy(data, io->in.data(), k);
  io->in.remove_prefix(k);
  *got = k;
  return 1;
}

long bio_ctrl(BIO* b, int cmd, long, void*) {
  auto* io = static_cast<TlsSession::Io*>(BIO_get_data(b));
  switch (cmd) {
    case BIO_CTRL_FLUSH:
      return 1;
    case BIO_CTRL_PENDING:
      return static_cast<long>(io->in.size());
    default:
      return 0;
  }
}

int bio_create(BIO* b) {
  BIO_set_init(b, 1);
  return 1;
}

const BIO_METHOD* session_bio_method() {
  static BIO_METHOD* m = [] {
    BIO_METHOD* x = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "cachetier tls");
    BIO_meth_set_write_ex(x, bio_write);
    BIO_meth_set_read_ex(x, bio_read);
    BIO_meth_set_ctrl(x, bio_ctrl);
    BIO_meth_set_create(x, bio_create);
    return x;
  }();
  return m;
}

// Points the BIO at `wire` (and `in`) for the length of one call into OpenSSL.
struct IoScope {
  TlsSession::Io& io;
  IoScope(TlsSession::Io& i, ByteBuffer& wire) : io(i) { io.out = &wire; }
  ~IoScope() { io.out = nullptr; }
};
}  // namespace

TlsSession::TlsSession(std::shared_ptr<TlsContext> ctx, std::string_view server_name)
    : ctx_(std::move(ctx)) {
  ssl_ = SSL_new(ctx_->get());
  if (ssl_ == nullptr) return;  // feed() reports it
  BIO* bio = BIO_new(session_bio_method());
  if (bio == nullptr) {
    SSL_free(ssl_);
    ssl_ = nullptr;
    return;
  }
  BIO_set_data(bio, &io_);
  SSL_set_bio(ssl_, bio, bio);  // one BIO both ways (SSL_free frees it)
  if (ctx_->server()) {
    SSL_set_accept_state(ssl_);
  } else {
    SSL_set_connect_state(ssl_);
    std::string name(server_name.empty() ? std::string_view(ctx_->options().server_name)
                                         : server_name);
    in6_addr ip6{};
    in_addr ip4{};
    const bool is_ip =
        inet_pton(AF_INET, name.c_str(), &ip4) == 1 || inet_pton(AF_INET6, name.c_str(), &ip6) == 1;
    if (is_ip) {  // no SNI for an address (RFC 6066); its certificate must list the address
      if (ctx_->options().verify_peer) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), name.c_str());
      }
    } else if (!name.empty()) {
      SSL_set_tlsext_host_name(ssl_, name.c_str());
      if (ctx_->options().verify_peer) SSL_set1_host(ssl_, name.c_str());
    }
  }
}

TlsSession::~TlsSession() {
  if (ssl_ != nullptr) SSL_free(ssl_);  // frees the BIO
}

Status TlsSession::error(std::string_view what, int ret) {
  int e = SSL_get_error(ssl_, ret);
  std::string reason;
  if (e == SSL_ERROR_SSL) {
    reason = openssl_reason();
    long v = SSL_get_verify_result(ssl_);
    if (v != X509_V_OK) {
      reason += " (";
      reason += X509_verify_cert_error_string(v);
      reason += ")";
    }
  } else if (e == SSL_ERROR_SYSCALL) {
    reason = "unexpected end of the TLS stream";
    ERR_clear_error();
  } else {
    reason = "TLS error " + std::to_string(e);
    ERR_clear_error();
  }
  return Status(StatusCode::kIoError, std::string(what) + ": " + reason);
}

Status TlsSession::start_client(ByteBuffer& wire) {
  if (ssl_ == nullptr) return Status(StatusCode::kIoError, "TLS: " + openssl_reason());
  IoScope scope(io_, wire);
  int r = SSL_do_handshake(ssl_);
  if (r != 1 && SSL_get_error(ssl_, r) != SSL_ERROR_WANT_READ) return error("TLS handshake", r);
  return Status::ok();
}

Status TlsSession::feed(std::string_view cipher, char* scratch, size_t scratch_size,
                        FunctionRef<bool(std::string_view)> plain, ByteBuffer& wire) {
  if (ssl_ == nullptr) return Status(StatusCode::kIoError, "TLS: " + openssl_reason());
  if (!done_ && !seen_bytes_ && !cipher.empty()) {
    seen_bytes_ = true;
    // Every TLS connection opens with a handshake record (type 22); text is something else.
    plaintext_peer_ = ctx_->server() && static_cast<uint8_t>(cipher[0]) != 22;
  }
  // What OpenSSL left unread last time (only when the caller stopped early) comes first.
  std::string joined;
  if (!held_.empty()) {
    joined.assign(held_.data(), held_.size());
    joined.append(cipher);
    held_.clear();
    cipher = joined;
  }
  io_.in = cipher;
  IoScope scope(io_, wire);
  struct Keep {  // on every return: keep what was not read
    TlsSession& s;
    ~Keep() {
      if (!s.io_.in.empty()) s.held_.append(s.io_.in);
      s.io_.in = {};
    }
  } keep{*this};
  if (!done_) {
    int r = SSL_do_handshake(ssl_);
    if (r != 1) {
      int e = SSL_get_error(ssl_, r);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return Status::ok();
      Status st = error("TLS handshake", r);
      if (plaintext_peer_) {
        return Status(st.code(),
                      std::string(st.message()) + " (a plaintext client on a TLS port?)");
      }
      return st;
    }
    done_ = just_opened_ = true;
  }
  // Plaintext, a scratch buffer at a time.
  for (;;) {
    size_t filled = 0;
    int last = 1;
    while (filled < scratch_size) {
      size_t got = 0;
      last = SSL_read_ex(ssl_, scratch + filled, scratch_size - filled, &got);
      if (last != 1) break;
      filled += got;
    }
    bool more = true;
    if (filled > 0) more = plain(std::string_view(scratch, filled));
    if (last == 1 && more) continue;  // the scratch filled up: there may be more
    if (last == 1) return Status::ok();
    int e = SSL_get_error(ssl_, last);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return Status::ok();
    if (e == SSL_ERROR_ZERO_RETURN) {
      peer_closed_ = true;
      return Status::ok();
    }
    return error("TLS read", last);
  }
}

Status TlsSession::encrypt(std::string_view plain, ByteBuffer& wire) {
  ByteBuffer* outer = io_.out;  // set when called from inside feed() (a handler's flush)
  io_.out = &wire;
  Status st = Status::ok();
  while (!plain.empty()) {
    size_t wrote = 0;
    int r = SSL_write_ex(ssl_, plain.data(), plain.size(), &wrote);
    if (r != 1) {
      st = error("TLS write", r);
      break;
    }
    plain.remove_prefix(wrote);
  }
  io_.out = outer;
  return st;
}

bool TlsSession::resumed() const { return ssl_ != nullptr && SSL_session_reused(ssl_) == 1; }

std::string TlsSession::describe() const {
  if (ssl_ == nullptr || !done_) return "TLS (handshaking)";
  return std::string(SSL_get_version(ssl_)) + " " + SSL_get_cipher_name(ssl_);
}

}  // namespace cachetier::net
