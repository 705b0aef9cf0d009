// wire/: agent protocol version 2, batches of messages in one frame.

#include <doctest/doctest.h>

#include "wire/agent_protocol.h"

namespace handoff::wire {
namespace {

TEST_CASE("RequestsSayVersion1Or2AndNoOther") {
  for (uint64_t v : {uint64_t{1}, uint64_t{2}}) {
    uint64_t rid = 0;
    auto req = DecodeRequest(RequestBuilder("get", 5, v).Finish(), &rid);
    REQUIRE(req.ok());
    CHECK(req->version == v);
  }
  for (uint64_t v : {uint64_t{0}, uint64_t{3}}) {
    uint64_t rid = 0;
    auto req = DecodeRequest(RequestBuilder("get", 6, v).Finish(), &rid);
    CHECK(req.status().IsInvalidArgument());
    CHECK(req.status().message().find("versions 1 to 2") != std::string::npos);
    CHECK(rid == 6);
  }
}

TEST_CASE("ABatchIsItsMessagesInOrderEachWithItsOwnBytes") {
  std::vector<std::string> frames;
  for (uint64_t rid = 1; rid <= 20; ++rid) frames.push_back(RequestBuilder("get", rid, 2).Finish());
  std::vector<std::string_view> views(frames.begin(), frames.end());
  const std::string batch = EncodeBatch(views);
  CHECK(IsBatch(batch));
  CHECK(MessagesIn(batch) == 20);
  CHECK(MessagesIn(frames[0]) == 1);
  CHECK_FALSE(IsBatch(frames[0]));
  auto decoded = DecodeRequests(batch);
  REQUIRE(decoded.ok());
  REQUIRE(decoded->size() == 20);
  for (size_t i = 0; i < 20; ++i) {
    REQUIRE((*decoded)[i].request.ok());
    CHECK((*decoded)[i].request->rid == i + 1);
    CHECK((*decoded)[i].bytes == frames[i]);
  }
  // One message decodes as a list of itself.
  auto one = DecodeRequests(frames[3]);
  REQUIRE(one.ok());
  REQUIRE(one->size() == 1);
  REQUIRE((*one)[0].request.ok());
  CHECK((*one)[0].request->rid == 4);
}

TEST_CASE("ABatchWithABadMessageAnswersThatOneAlone") {
  const std::string good = RequestBuilder("get", 1, 2).Finish();
  const std::string wrong_version = RequestBuilder("get", 2, 7).Finish();
  const std::string not_a_map("\x05", 1);
  auto decoded = DecodeRequests(EncodeBatch({good, wrong_version, not_a_map, good}));
  REQUIRE(decoded.ok());
  REQUIRE(decoded->size() == 4);
  CHECK((*decoded)[0].request.ok());
  CHECK((*decoded)[1].request.status().IsInvalidArgument());
  CHECK((*decoded)[1].rid == 2);
  CHECK((*decoded)[2].request.status().IsInvalidArgument());
  CHECK((*decoded)[2].rid == 0);
  CHECK((*decoded)[3].request.ok());
}

TEST_CASE("ABatchThatCannotBeSplitIsRefusedWhole") {
  const std::string good = RequestBuilder("get", 1, 2).Finish();
  CHECK(DecodeRequests(std::string("\x90", 1)).status().message().find("empty") !=
        std::string::npos);
  // Over the limit: the header alone says so, nothing is decoded.
  std::string big;
  AppendArrayHeader(kMaxBatchItems + 1, &big);
  CHECK(DecodeRequests(big).status().message().find("at most 1024") != std::string::npos);
  // Exactly at the limit is a batch.
  std::vector<std::string_view> most(kMaxBatchItems, good);
  auto full = DecodeRequests(EncodeBatch(most));
  REQUIRE(full.ok());
  CHECK(full->size() == kMaxBatchItems);
  // Fewer values than the header says.
  std::string short_batch;
  AppendArrayHeader(3, &short_batch);
  short_batch += good + good;
  CHECK(DecodeRequests(short_batch).status().message().find("ends after 2 of its 3") !=
        std::string::npos);
  // A value cut short.
  std::string cut = EncodeBatch({good, good});
  cut.resize(cut.size() - 3);
  CHECK(DecodeRequests(cut).status().message().find("value 1") != std::string::npos);
  // Bytes after the last value.
  CHECK(DecodeRequests(EncodeBatch({good}) + "\x01").status().IsInvalidArgument());
}

TEST_CASE("ArrayHeadersOfEveryWidth") {
  for (size_t n : {size_t{0}, size_t{15}, size_t{16}, size_t{65535}, size_t{65536}}) {
    std::string header;
    AppendArrayHeader(n, &header);
    CHECK(header.size() == (n < 16 ? 1u : n <= 0xffff ? 3u : 5u));
    CHECK(ArrayLength(header) == n);
  }
  CHECK(ArrayLength("") == std::nullopt);
  CHECK(ArrayLength(std::string("\x80", 1)) == std::nullopt);      // a map
  CHECK(ArrayLength(std::string("\xdc\x01", 2)) == std::nullopt);  // a header cut short
}

TEST_CASE("RepliesAndPushesComeAloneOrBatched") {
  ReplyBuilder a(1);
  const std::string first = a.Finish();
  const std::string second = EncodeErrorReply(2, Status::NotFound("no such intent"));
  MsgWriter push;
  push.BeginMap();
  push.Field("v", kMessageVersion);
  push.Field("push", kPushDeliver);
  push.EndMap();
  auto replies = DecodeReplies(EncodeBatch({first, second, push.view()}));
  REQUIRE(replies.ok());
  REQUIRE(replies->size() == 3);
  CHECK((*replies)[0].rid == 1);
  CHECK((*replies)[1].status.IsNotFound());
  CHECK((*replies)[2].push == "deliver");
  auto alone = DecodeReplies(first);
  REQUIRE(alone.ok());
  CHECK(alone->size() == 1);
  CHECK(DecodeReplies(EncodeBatch({first, std::string_view("\x05", 1)}))
            .status()
            .IsInvalidArgument());
  // An empty batch is not a message (the fuzz target's finding).
  CHECK(DecodeReplies(std::string("\x90", 1)).status().IsInvalidArgument());
}

}  // namespace
}  // namespace handoff::wire
