#pragma once
// WriteResult: what an insert-or-ignore really did (fix for D5). `inserted` is false when the key
// already existed; `row` is then the row that is stored, not the caller's input.
namespace pm {

template <class Model>
struct WriteResult {
  bool inserted = false;
  Model row;
};

}  // namespace pm
