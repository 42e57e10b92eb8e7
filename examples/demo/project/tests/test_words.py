from textkit import title_case, word_count


def test_word_count_splits_on_any_whitespace():
    assert word_count("one  two\tthree\nfour") == 4
    assert word_count("") == 0


def test_title_case_keeps_the_rest_of_each_word():
    assert title_case("hello wORLD") == "Hello WORLD"
