// common/free_list.h: reuse, reset, the bound on spares, nothing leaked.
#include "common/free_list.h"

#include <catch2/catch.hpp>
#include <string>

namespace {

int live = 0;

struct Obj {
  Obj() { ++live; }
  ~Obj() { --live; }
  Obj(const Obj&) = delete;
  Obj& operator=(const Obj&) = delete;
  int n = 0;
  std::string s;
};

}  // namespace

TEST_CASE("free list: a given object comes back reset, the spares are bounded, none leak") {
  live = 0;
  {
    cachetier::FreeList<Obj> fl(2);
    Obj* a = fl.take();
    a->n = 7;
    a->s = std::string(1000, 'x');  // a buffer of its own: freed on give
    fl.give(a);
    CHECK(fl.spare() == 1);
    CHECK(live == 1);
    Obj* b = fl.take();
    CHECK(b == a);  // the same storage, reused
    CHECK(b->n == 0);
    CHECK(b->s.empty());
    CHECK(b->s.capacity() < 1000);
    CHECK(fl.spare() == 0);

    Obj* c = fl.take();
    Obj* d = fl.take();
    CHECK(live == 3);
    fl.give(b);
    fl.give(c);
    fl.give(d);  // over the bound: freed
    CHECK(fl.spare() == 2);
    CHECK(live == 2);
  }
  CHECK(live == 0);  // the spares go with the list
}
