// OpenSSL for tls.cc and auth.cc, opened when first needed (dlopen of libssl.so.3) instead
// of linked: a cacheserver or cacherouter without TLS or an auth file then maps neither
// libssl nor libcrypto (1.7 MB resident on Debian 12, counted in the node's RSS).
//
// Include it after the OpenSSL headers, in those two files only: it defines each function
// below as a macro naming its pointer, so OpenSSL's own macros (SSL_CTX_set_mode ->
// SSL_CTX_ctrl) go through the pointers too. Call openssl::load() before the first use; an
// OpenSSL function this code starts to use must be added to the list (the link fails
// otherwise: nothing here links libssl).
#pragma once

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "common/status.h"

#define CACHETIER_OPENSSL_FUNCTIONS(X) \
  X(BIO_clear_flags) \
  X(BIO_get_data) \
  X(BIO_get_new_index) \
  X(BIO_meth_new) \
  X(BIO_meth_set_create) \
  X(BIO_meth_set_ctrl) \
  X(BIO_meth_set_read_ex) \
  X(BIO_meth_set_write_ex) \
  X(BIO_new) \
  X(BIO_set_data) \
  X(BIO_set_flags) \
  X(BIO_set_init) \
  X(CRYPTO_memcmp) \
  X(ERR_clear_error) \
  X(ERR_error_string_n) \
  X(ERR_get_error) \
  X(ERR_reason_error_string) \
  X(EVP_Digest) \
  X(EVP_sha256) \
  X(SSL_CIPHER_get_name) \
  X(SSL_CTX_check_private_key) \
  X(SSL_CTX_ctrl) \
  X(SSL_CTX_free) \
  X(SSL_CTX_load_verify_locations) \
  X(SSL_CTX_new) \
  X(SSL_CTX_set_cipher_list) \
  X(SSL_CTX_set_client_CA_list) \
  X(SSL_CTX_set_default_verify_paths) \
  X(SSL_CTX_set_session_id_context) \
  X(SSL_CTX_set_verify) \
  X(SSL_CTX_use_PrivateKey_file) \
  X(SSL_CTX_use_certificate_chain_file) \
  X(SSL_ctrl) \
  X(SSL_do_handshake) \
  X(SSL_free) \
  X(SSL_get0_param) \
  X(SSL_get_current_cipher) \
  X(SSL_get_error) \
  X(SSL_get_verify_result) \
  X(SSL_get_version) \
  X(SSL_load_client_CA_file) \
  X(SSL_new) \
  X(SSL_read_ex) \
  X(SSL_session_reused) \
  X(SSL_set1_host) \
  X(SSL_set_accept_state) \
  X(SSL_set_bio) \
  X(SSL_set_connect_state) \
  X(SSL_write_ex) \
  X(TLS_client_method) \
  X(TLS_server_method) \
  X(X509_VERIFY_PARAM_set1_ip_asc) \
  X(X509_verify_cert_error_string)

namespace cachetier::net::openssl {

struct Api {
#define CACHETIER_OPENSSL_MEMBER(f) decltype(&::f) p_##f = nullptr;
  CACHETIER_OPENSSL_FUNCTIONS(CACHETIER_OPENSSL_MEMBER)
#undef CACHETIER_OPENSSL_MEMBER
};

extern Api api;

// Opens libssl.so.3 (with its libcrypto.so.3) once and finds every function of the list;
// later calls return the first call's result. The error names the library or the function.
Status load();

}  // namespace cachetier::net::openssl

#ifndef CACHETIER_OPENSSL_NO_MACROS
#define BIO_clear_flags (::cachetier::net::openssl::api.p_BIO_clear_flags)
#define BIO_get_data (::cachetier::net::openssl::api.p_BIO_get_data)
#define BIO_get_new_index (::cachetier::net::openssl::api.p_BIO_get_new_index)
#define BIO_meth_new (::cachetier::net::openssl::api.p_BIO_meth_new)
#define BIO_meth_set_create (::cachetier::net::openssl::api.p_BIO_meth_set_create)
#define BIO_meth_set_ctrl (::cachetier::net::openssl::api.p_BIO_meth_set_ctrl)
#define BIO_meth_set_read_ex (::cachetier::net::openssl::api.p_BIO_meth_set_read_ex)
#define BIO_meth_set_write_ex (::cachetier::net::openssl::api.p_BIO_meth_set_write_ex)
#define BIO_new (::cachetier::net::openssl::api.p_BIO_new)
#define BIO_set_data (::cachetier::net::openssl::api.p_BIO_set_data)
#define BIO_set_flags (::cachetier::net::openssl::api.p_BIO_set_flags)
#define BIO_set_init (::cachetier::net::openssl::api.p_BIO_set_init)
#define CRYPTO_memcmp (::cachetier::net::openssl::api.p_CRYPTO_memcmp)
#define ERR_clear_error (::cachetier::net::openssl::api.p_ERR_clear_error)
#define ERR_error_string_n (::cachetier::net::openssl::api.p_ERR_error_string_n)
#define ERR_get_error (::cachetier::net::openssl::api.p_ERR_get_error)
#define ERR_reason_error_string (::cachetier::net::openssl::api.p_ERR_reason_error_string)
#define EVP_Digest (::cachetier::net::openssl::api.p_EVP_Digest)
#define EVP_sha256 (::cachetier::net::openssl::api.p_EVP_sha256)
#define SSL_CIPHER_get_name (::cachetier::net::openssl::api.p_SSL_CIPHER_get_name)
#define SSL_CTX_check_private_key (::cachetier::net::openssl::api.p_SSL_CTX_check_private_key)
#define SSL_CTX_ctrl (::cachetier::net::openssl::api.p_SSL_CTX_ctrl)
#define SSL_CTX_free (::cachetier::net::openssl::api.p_SSL_CTX_free)
#define SSL_CTX_load_verify_locations (::cachetier::net::openssl::api.p_SSL_CTX_load_verify_locations)
#define SSL_CTX_new (::cachetier::net::openssl::api.p_SSL_CTX_new)
#define SSL_CTX_set_cipher_list (::cachetier::net::openssl::api.p_SSL_CTX_set_cipher_list)
#define SSL_CTX_set_client_CA_list (::cachetier::net::openssl::api.p_SSL_CTX_set_client_CA_list)
#define SSL_CTX_set_default_verify_paths (::cachetier::net::openssl::api.p_SSL_CTX_set_default_verify_paths)
#define SSL_CTX_set_session_id_context (::cachetier::net::openssl::api.p_SSL_CTX_set_session_id_context)
#define SSL_CTX_set_verify (::cachetier::net::openssl::api.p_SSL_CTX_set_verify)
#define SSL_CTX_use_PrivateKey_file (::cachetier::net::openssl::api.p_SSL_CTX_use_PrivateKey_file)
#define SSL_CTX_use_certificate_chain_file (::cachetier::net::openssl::api.p_SSL_CTX_use_certificate_chain_file)
#define SSL_ctrl (::cachetier::net::openssl::api.p_SSL_ctrl)
#define SSL_do_handshake (::cachetier::net::openssl::api.p_SSL_do_handshake)
#define SSL_free (::cachetier::net::openssl::api.p_SSL_free)
#define SSL_get0_param (::cachetier::net::openssl::api.p_SSL_get0_param)
#define SSL_get_current_cipher (::cachetier::net::openssl::api.p_SSL_get_current_cipher)
#define SSL_get_error (::cachetier::net::openssl::api.p_SSL_get_error)
#define SSL_get_verify_result (::cachetier::net::openssl::api.p_SSL_get_verify_result)
#define SSL_get_version (::cachetier::net::openssl::api.p_SSL_get_version)
#define SSL_load_client_CA_file (::cachetier::net::openssl::api.p_SSL_load_client_CA_file)
#define SSL_new (::cachetier::net::openssl::api.p_SSL_new)
#define SSL_read_ex (::cachetier::net::openssl::api.p_SSL_read_ex)
#define SSL_session_reused (::cachetier::net::openssl::api.p_SSL_session_reused)
#define SSL_set1_host (::cachetier::net::openssl::api.p_SSL_set1_host)
#define SSL_set_accept_state (::cachetier::net::openssl::api.p_SSL_set_accept_state)
#define SSL_set_bio (::cachetier::net::openssl::api.p_SSL_set_bio)
#define SSL_set_connect_state (::cachetier::net::openssl::api.p_SSL_set_connect_state)
#define SSL_write_ex (::cachetier::net::openssl::api.p_SSL_write_ex)
#define TLS_client_method (::cachetier::net::openssl::api.p_TLS_client_method)
#define TLS_server_method (::cachetier::net::openssl::api.p_TLS_server_method)
#define X509_VERIFY_PARAM_set1_ip_asc (::cachetier::net::openssl::api.p_X509_VERIFY_PARAM_set1_ip_asc)
#define X509_verify_cert_error_string (::cachetier::net::openssl::api.p_X509_verify_cert_error_string)
#endif
