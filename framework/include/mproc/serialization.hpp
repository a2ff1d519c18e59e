// mproc/serialization.hpp — what can cross a process boundary, and how it is encoded.
//
// A type T is `mproc::serializable` when `mproc::codec<T>` is enabled. Built in:
//  - arithmetic types, enums, and other trivially copyable non-pointer types: bytes as they are
//    (the fast path; both ends run the same binary on the same host). Not on this path, so
//    checked when decoding: bool, std::optional and std::variant. Not serializable at all,
//    although trivially copyable: std::string_view, std::span, std::reference_wrapper, and
//    arrays of pointers (what they hold is an address in the sender's memory). A plain struct
//    of your own takes the fast path as it is: give it an inspect() if it holds a pointer or a
//    bool whose bytes must be checked;
//  - std::string, vector, array, pair, tuple, optional, variant, map, unordered_map, set,
//    std::chrono::duration;
//  - user types with a CAF-style `inspect(f, x)` found by ADL, e.g.
//      template <class F> auto inspect(F& f, point& p) { return f(p.x, p.y, p.label); }
//    CAF annotations such as `caf::meta::type_name("point")` are accepted and skipped, so one
//    `inspect` serves both CAF and mproc.
// Raw pointers, references and std::function are not serializable: spawning a registered
// function whose parameters are not serializable is a compile-time error.
// Extend by specializing `mproc::codec<T>` with `enabled = true`, `encode` and `decode`.
//
// Decoding never trusts the bytes: a truncated or inconsistent payload throws
// mproc::error(errc::bad_message); it never reads out of bounds or allocates absurd sizes.
//
// Thread safety: writer/reader are plain values, one per thread.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <functional>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string_view>
#include <string>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "mproc/error.hpp"

namespace caf::meta {
struct annotation;  // CAF's marker base for inspect() annotations; never completed here
}

namespace mproc {

namespace detail {

/// Buffers from this size on ask for transparent huge pages when they are allocated: on a VM a
/// fresh 4 KiB page costs microseconds (a fresh 64 MiB vector ~40 ms to fill, ~7 ms in 2 MiB
/// pages), and a bulk message is received into a fresh vector.
constexpr std::size_t large_buffer = std::size_t{2} << 20;
/// madvise(MADV_HUGEPAGE) on the whole pages inside [p, p + n): a hint, errors ignored.
void advise_huge_pages(void* p, std::size_t n) noexcept;
/// Gives `v` room for `n` elements (in huge pages when that is large), dropping its contents.
template <class T>
void reserve_discarding(std::vector<T>& v, std::size_t n) {
  std::vector<T> fresh;
  fresh.reserve(n);
  if (n * sizeof(T) >= large_buffer) advise_huge_pages(fresh.data(), n * sizeof(T));
  v.swap(fresh);
}

}  // namespace detail

/// Appends encoded values to a byte buffer.
class writer {
 public:
  /// A large byte range left where it was (see the gathering constructor): it belongs at
  /// offset `at` of the buffer, before the bytes that are there.
  struct gathered_range {
    std::size_t at;
    std::span<const std::byte> bytes;
  };
  explicit writer(std::vector<std::byte>& out) : out_(out) {}
  /// Ranges from detail::large_buffer bytes on are not copied into `out` but listed in
  /// `gathered`: whoever takes the encoding then copies each once, from the value itself (which
  /// must outlive that). How a bulk message reaches its memfd with a single copy.
  writer(std::vector<std::byte>& out, std::vector<gathered_range>& gathered) : out_(out), gathered_(&gathered) {}
  void raw(const void* p, std::size_t n) {
    // resize + memcpy rather than insert(): g++ 12 at -O2 reports a false -Wstringop-overflow
    // on vector<std::byte>::insert, which would break users' -Werror builds.
    if (n == 0) return;
    if (n >= detail::large_buffer) return raw_large(p, n);
    std::size_t at = out_.size();
    out_.resize(at + n);
    std::memcpy(out_.data() + at, p, n);
  }
  void size(std::size_t n) {
    auto v = static_cast<std::uint64_t>(n);
    raw(&v, sizeof v);
  }

 private:
  /// A bulk append: gathered, or the buffer grows in huge pages and the bytes are copied once
  /// (no zero-filling resize first). Out of line, where the insert() warning cannot reach users.
  void raw_large(const void* p, std::size_t n);
  std::vector<std::byte>& out_;
  std::vector<gathered_range>* gathered_ = nullptr;
};

namespace detail {

/// Bytes still being written while they are read: the body of a large message, which its
/// producer fills in chunks after sending it, so that the consumer copies one chunk while the
/// next is written (src/mailbox/body_pool.hpp). While one is installed on a thread
/// (arriving_now), a reader made over a range starting at `begin` reads only what is ready: a
/// bulk read (detail::large_buffer bytes or more) waits for each piece and copies it as it
/// comes; a small read ahead of the ready bytes throws bytes_not_ready, and the caller decodes
/// again once every byte is there (rare: the first chunk is waited for before decoding).
class arriving_bytes {
 public:
  /// Blocks until at least `need` bytes from `begin` are written; returns how many are (at
  /// least `need`). Throws mproc::error(errc::bad_message) when they never will be.
  virtual std::size_t wait_ready(std::size_t need) = 0;
  const std::byte* begin = nullptr;
  std::size_t ready = 0;  // bytes from `begin` known to be written

 protected:
  ~arriving_bytes() = default;
};
/// Thrown by a small read ahead of arriving bytes (see arriving_bytes); a bad_message to
/// whoever does not expect it.
struct bytes_not_ready : error {
  bytes_not_ready() : error(errc::bad_message, "read ahead of the bytes of a large message still being written") {}
};
/// The arriving bytes of this thread's current decode, or null (almost always).
extern constinit thread_local arriving_bytes* arriving_now;

/// v.insert(v.end(), p, p + n) for byte vectors, out of line (see writer::raw).
template <class T>
void append_bytes(std::vector<T>& v, const T* p, std::size_t n);

}  // namespace detail

/// Reads encoded values from a byte range; every read is bounds-checked. Over arriving bytes
/// (detail::arriving_bytes), a read waits until the bytes it needs are written.
class reader {
 public:
  reader(const std::byte* p, std::size_t n) : p_(p), ready_end_(p + n), end_(p + n) {
    if (auto* a = detail::arriving_now; a != nullptr && a->begin == p) [[unlikely]] {
      arriving_ = a;
      ready_end_ = p + std::min(n, a->ready);
    }
  }
  void raw(void* dst, std::size_t n) {
    if (n > ready()) [[unlikely]] {
      // Bulk copies go piece by piece as the bytes arrive; a small read never waits (a
      // returning slow path there sets off g++'s -Wmaybe-uninitialized in users' code).
      if (n >= detail::large_buffer) return raw_arriving(static_cast<std::byte*>(dst), n);
      not_ready(n);
    }
    if (n != 0) std::memcpy(dst, p_, n);
    p_ += n;
  }
  /// The next `n` bytes, in place (valid as long as the buffer read).
  const std::byte* take(std::size_t n) {
    if (n > ready()) [[unlikely]] {
      if (n < detail::large_buffer) not_ready(n);
      wait_ready(n);
    }
    const std::byte* at = p_;
    p_ += n;
    return at;
  }
  /// The next `n` bytes, in place, as pieces `piece(const std::byte*, std::size_t)` in order:
  /// one piece, or over arriving bytes each piece as soon as it is written.
  template <class Piece>
  void take_pieces(std::size_t n, Piece&& piece) {
    if (n > remaining()) fail("truncated payload");
    while (n > 0) {
      if (ready() == 0) wait_ready(1);
      std::size_t k = std::min(n, ready());
      piece(p_, k);
      p_ += k;
      n -= k;
    }
  }
  /// Reads an element count and checks it against what is left, assuming each element takes at
  /// least `min_bytes` (so garbage cannot make us allocate terabytes).
  std::size_t size(std::size_t min_bytes = 1) {
    std::uint64_t v;
    raw(&v, sizeof v);
    if (min_bytes != 0 && v > remaining() / min_bytes) fail("element count exceeds payload");
    return static_cast<std::size_t>(v);
  }
  /// Bytes left to read (written or not).
  std::size_t remaining() const noexcept { return static_cast<std::size_t>(end_ - p_); }
  [[noreturn]] static void fail(const char* what) { throw error(errc::bad_message, what); }

 private:
  std::size_t ready() const noexcept { return static_cast<std::size_t>(ready_end_ - p_); }
  /// Makes at least `n` more bytes ready (waiting for arriving ones), or throws bad_message.
  void wait_ready(std::size_t n);
  /// A small read of `n` bytes found them not there: bad_message when they never will be,
  /// detail::bytes_not_ready when they are still arriving.
  [[noreturn]] void not_ready(std::size_t n);
  void raw_arriving(std::byte* dst, std::size_t n);
  const std::byte* p_;
  const std::byte* ready_end_;  // bytes before it may be read now
  const std::byte* end_;
  detail::arriving_bytes* arriving_ = nullptr;
};

template <class T, class = void>
struct codec {
  static constexpr bool enabled = false;
};

template <class T>
concept serializable = codec<std::remove_cv_t<T>>::enabled;

template <serializable T>
void encode(writer& w, const T& x) { codec<std::remove_cv_t<T>>::encode(w, x); }
template <serializable T>
void decode(reader& r, T& x) { codec<std::remove_cv_t<T>>::decode(r, x); }

namespace detail {

template <class T>
constexpr bool is_annotation_v =
    std::is_class_v<std::decay_t<T>> && std::is_base_of_v<caf::meta::annotation, std::decay_t<T>>;

/// The inspector handed to a user's `inspect` when saving; mimics CAF 0.17's interface.
struct save_inspector {
  using result_type = void;
  static constexpr bool reads_state = true;
  static constexpr bool writes_state = false;
  writer& w;
  template <class... Ts>
  void operator()(Ts&&... xs) { (one(xs), ...); }
  template <class U>
  void one(U& x) {
    if constexpr (!is_annotation_v<U>) mproc::encode(w, x);
  }
};

/// The inspector handed to a user's `inspect` when loading.
struct load_inspector {
  using result_type = void;
  static constexpr bool reads_state = false;
  static constexpr bool writes_state = true;
  reader& r;
  template <class... Ts>
  void operator()(Ts&&... xs) { (one(xs), ...); }
  template <class U>
  void one(U& x) {
    if constexpr (!is_annotation_v<U>) mproc::decode(r, x);
  }
};

template <class T>
concept has_inspect = requires(save_inspector& s, load_inspector& l, T& x) {
  inspect(s, x);
  inspect(l, x);
};

/// May T travel as its bytes? Trivially copyable, and nothing in it is an address or a value
/// whose bytes must be checked (bool, optional's flag, variant's index).
template <class T>
struct raw_bytes_ok
    : std::bool_constant<std::is_trivially_copyable_v<T> && !std::is_pointer_v<T> && !std::is_member_pointer_v<T> &&
                         !std::is_null_pointer_v<T> && !std::is_same_v<T, bool>> {};
template <class T, std::size_t N>
struct raw_bytes_ok<T[N]> : raw_bytes_ok<T> {};
template <class T, std::size_t N>
struct raw_bytes_ok<std::array<T, N>> : raw_bytes_ok<T> {};
template <class A, class B>
struct raw_bytes_ok<std::pair<A, B>>
    : std::bool_constant<std::is_trivially_copyable_v<std::pair<A, B>> && raw_bytes_ok<A>::value &&
                         raw_bytes_ok<B>::value> {};
template <class... Ts>
struct raw_bytes_ok<std::tuple<Ts...>>
    : std::bool_constant<std::is_trivially_copyable_v<std::tuple<Ts...>> && (raw_bytes_ok<Ts>::value && ...)> {};
template <class T>
struct raw_bytes_ok<std::optional<T>> : std::false_type {};
template <class... Ts>
struct raw_bytes_ok<std::variant<Ts...>> : std::false_type {};
template <class C, class Traits>
struct raw_bytes_ok<std::basic_string_view<C, Traits>> : std::false_type {};
template <class T, std::size_t N>
struct raw_bytes_ok<std::span<T, N>> : std::false_type {};
template <class T>
struct raw_bytes_ok<std::reference_wrapper<T>> : std::false_type {};

template <class T>
concept memcpy_able = raw_bytes_ok<std::remove_cv_t<T>>::value;

template <class T>
void encode_elements(writer& w, const T& range) {
  w.size(std::size(range));
  for (const auto& x : range) mproc::encode(w, x);
}

}  // namespace detail

// Empty types (std::tuple<>, tags): nothing to send.
template <class T>
struct codec<T, std::enable_if_t<std::is_empty_v<T> && std::is_default_constructible_v<T> &&
                                 !detail::has_inspect<T>>> {
  static constexpr bool enabled = true;
  static void encode(writer&, const T&) {}
  static void decode(reader&, T&) {}
};

// Trivially copyable values (ints, doubles, enums, PODs): raw bytes.
template <class T>
struct codec<T, std::enable_if_t<detail::memcpy_able<T> && !std::is_empty_v<T> && !detail::has_inspect<T>>> {
  static constexpr bool enabled = true;
  static void encode(writer& w, const T& x) { w.raw(&x, sizeof(T)); }
  static void decode(reader& r, T& x) { r.raw(&x, sizeof(T)); }
};

// User types with inspect().
template <class T>
struct codec<T, std::enable_if_t<detail::has_inspect<T>>> {
  static constexpr bool enabled = true;
  static void encode(writer& w, const T& x) {
    detail::save_inspector f{w};
    inspect(f, const_cast<T&>(x));  // NOLINT: CAF's inspect takes T&; saving does not mutate
  }
  static void decode(reader& r, T& x) {
    detail::load_inspector f{r};
    inspect(f, x);
  }
};

// bool: one byte, 0 or 1; anything else is garbage (and reading it as a bool undefined).
template <>
struct codec<bool> {
  static constexpr bool enabled = true;
  static void encode(writer& w, const bool& b) {
    std::uint8_t v = b ? 1 : 0;
    w.raw(&v, 1);
  }
  static void decode(reader& r, bool& b) {
    std::uint8_t v;
    r.raw(&v, 1);
    if (v > 1) reader::fail("bad bool");
    b = v == 1;
  }
};

template <>
struct codec<std::string> {
  static constexpr bool enabled = true;
  static void encode(writer& w, const std::string& s) {
    w.size(s.size());
    w.raw(s.data(), s.size());
  }
  static void decode(reader& r, std::string& s) {
    s.resize(r.size());
    r.raw(s.data(), s.size());
  }
};

template <class T>
struct codec<std::vector<T>, std::enable_if_t<serializable<T>>> {
  static constexpr bool enabled = true;
  static void encode(writer& w, const std::vector<T>& v) {
    if constexpr (detail::memcpy_able<T> && !std::is_same_v<T, bool>) {
      w.size(v.size());
      w.raw(v.data(), v.size() * sizeof(T));
    } else {
      detail::encode_elements(w, v);
    }
  }
  static void decode(reader& r, std::vector<T>& v) {
    if constexpr (detail::memcpy_able<T> && !std::is_same_v<T, bool>) {
      std::size_t n = r.size(sizeof(T));
      if (v.capacity() < n) detail::reserve_discarding(v, n);
      if constexpr (std::is_same_v<T, std::byte> || std::is_same_v<T, char> || std::is_same_v<T, unsigned char>) {
        v.clear();  // then one pass: no zero-filling resize first
        r.take_pieces(n, [&](const std::byte* p, std::size_t k) { detail::append_bytes(v, reinterpret_cast<const T*>(p), k); });
      } else {
        v.resize(n);
        r.raw(v.data(), n * sizeof(T));
      }
    } else {
      v.clear();
      std::size_t n = r.size();
      v.reserve(n);
      for (std::size_t i = 0; i < n; ++i) {
        T x{};
        mproc::decode(r, x);
        v.push_back(std::move(x));
      }
    }
  }
};

template <class T, std::size_t N>
struct codec<std::array<T, N>, std::enable_if_t<serializable<T> && !detail::memcpy_able<std::array<T, N>>>> {
  static constexpr bool enabled = true;
  static void encode(writer& w, const std::array<T, N>& a) {
    for (const auto& x : a) mproc::encode(w, x);
  }
  static void decode(reader& r, std::array<T, N>& a) {
    for (auto& x : a) mproc::decode(r, x);
  }
};

template <class... Ts>
struct codec<std::tuple<Ts...>, std::enable_if_t<(serializable<Ts> && ...) &&
                                                 !detail::memcpy_able<std::tuple<Ts...>>>> {
  static constexpr bool enabled = true;
  static void encode(writer& w, const std::tuple<Ts...>& t) {
    std::apply([&](const auto&... xs) { (mproc::encode(w, xs), ...); }, t);
  }
  static void decode(reader& r, std::tuple<Ts...>& t) {
    std::apply([&](auto&... xs) { (mproc::decode(r, xs), ...); }, t);
  }
};

template <class A, class B>
struct codec<std::pair<A, B>, std::enable_if_t<serializable<A> && serializable<B> &&
                                               !detail::memcpy_able<std::pair<A, B>>>> {
  static constexpr bool enabled = true;
  static void encode(writer& w, const std::pair<A, B>& p) {
    mproc::encode(w, p.first);
    mproc::encode(w, p.second);
  }
  static void decode(reader& r, std::pair<A, B>& p) {
    mproc::decode(r, p.first);
    mproc::decode(r, p.second);
  }
};

template <class T>
struct codec<std::optional<T>, std::enable_if_t<serializable<T> && !detail::memcpy_able<std::optional<T>>>> {
  static constexpr bool enabled = true;
  static void encode(writer& w, const std::optional<T>& o) {
    std::uint8_t has = o.has_value();
    w.raw(&has, 1);
    if (o) mproc::encode(w, *o);
  }
  static void decode(reader& r, std::optional<T>& o) {
    std::uint8_t has;
    r.raw(&has, 1);
    if (has > 1) reader::fail("bad optional flag");
    o.reset();
    if (has) mproc::decode(r, o.emplace());
  }
};

template <class... Ts>
struct codec<std::variant<Ts...>, std::enable_if_t<(serializable<Ts> && ...) &&
                                                   !detail::memcpy_able<std::variant<Ts...>>>> {
  static constexpr bool enabled = true;
  static void encode(writer& w, const std::variant<Ts...>& v) {
    auto index = static_cast<std::uint32_t>(v.index());
    w.raw(&index, sizeof index);
    std::visit([&](const auto& x) { mproc::encode(w, x); }, v);
  }
  static void decode(reader& r, std::variant<Ts...>& v) {
    std::uint32_t index;
    r.raw(&index, sizeof index);
    if (index >= sizeof...(Ts)) reader::fail("bad variant index");
    decode_at(r, v, index, std::index_sequence_for<Ts...>{});
  }
  template <std::size_t... Is>
  static void decode_at(reader& r, std::variant<Ts...>& v, std::uint32_t index, std::index_sequence<Is...>) {
    ((Is == index ? (void)mproc::decode(r, v.template emplace<Is>()) : void()), ...);
  }
};

namespace detail {
/// Shared by map, unordered_map and set: count, then each element decoded and inserted.
template <class Container, class Element>
struct associative_codec {
  static constexpr bool enabled = true;
  static void encode(writer& w, const Container& c) { encode_elements(w, c); }
  static void decode(reader& r, Container& c) {
    c.clear();
    std::size_t n = r.size();
    for (std::size_t i = 0; i < n; ++i) {
      Element e{};
      mproc::decode(r, e);
      c.insert(std::move(e));
    }
  }
};
}  // namespace detail

template <class K, class V, class C, class A>
struct codec<std::map<K, V, C, A>, std::enable_if_t<serializable<K> && serializable<V>>>
    : detail::associative_codec<std::map<K, V, C, A>, std::pair<K, V>> {};
template <class K, class V, class H, class E, class A>
struct codec<std::unordered_map<K, V, H, E, A>, std::enable_if_t<serializable<K> && serializable<V>>>
    : detail::associative_codec<std::unordered_map<K, V, H, E, A>, std::pair<K, V>> {};
template <class K, class C, class A>
struct codec<std::set<K, C, A>, std::enable_if_t<serializable<K>>>
    : detail::associative_codec<std::set<K, C, A>, K> {};

/// Encodes `x` into a fresh buffer.
template <serializable T>
std::vector<std::byte> to_bytes(const T& x) {
  std::vector<std::byte> out;
  writer w{out};
  mproc::encode(w, x);
  return out;
}

/// Decodes a whole buffer into a T; trailing bytes are an error (errc::bad_message).
template <serializable T>
T from_bytes(const std::byte* p, std::size_t n) {
  reader r{p, n};
  T x{};
  mproc::decode(r, x);
  if (r.remaining() != 0) reader::fail("trailing bytes after value");
  return x;
}

}  // namespace mproc
