from obert_lib.corpus import filters


def test_navigation_lines():
    assert filters.is_navigation_line("首页 | 百科 | 分类 | 特色 | 帮助 | 登录")
    assert filters.is_navigation_line("网站首页 > 百科 > 地理 > 城市")
    assert not filters.is_navigation_line("北京是中国的首都，也是政治中心。")
    assert not filters.is_navigation_line("北京 | 上海")  # two items are not a menu


def test_boilerplate_lines_only_when_short():
    assert filters.is_boilerplate_line("版权所有 © 2008-2023 某某百科 京ICP备12345678号")
    assert filters.is_boilerplate_line("（责任编辑：王某某）")
    assert filters.is_boilerplate_line("原标题：北京今日降温")
    long_line = "这篇文章讨论了网络转载现象，" + "内容" * 60
    assert not filters.is_boilerplate_line(long_line)


def test_seo_spam_lines():
    assert filters.is_seo_spam_line("减肥药 减肥药哪个好 减肥药排行榜 最有效的减肥药 减肥药价格")
    assert filters.is_seo_spam_line("成都旅游_成都旅游攻略_成都必去景点大全_成都旅游多少钱-某某旅游网")
    assert not filters.is_seo_spam_line("北京 上海 广州 深圳")


def test_scrub_private():
    text, n = filters.scrub_private(
        "联系138-0013-8000或010-12345678，邮箱a.b@example.com，见https://x.example.com/a?b=1。"
    )
    assert text == "联系或，邮箱，见。" and n == 4


def test_quality_measures():
    assert filters.cjk_ratio("北京abc") == 0.4
    assert filters.top_char_fraction("哈哈哈哈") == 1.0
    assert filters.duplicate_line_fraction("a\nb\na\na") == 0.5
    assert filters.spam_keyword_hits("加微信免费领取") == 2
    assert filters.cjk_count("北京2019年") == 3


def test_punctuation_digit_and_ngram_measures():
    assert filters.punctuation_ratio("北京，上海！") == 2 / 6
    assert filters.digit_ratio("电话12345678") == 8 / 10
    assert filters.duplicate_ngram_char_fraction("北京是首都") == 0.0  # shorter than 2n
    text = "长江是中国第一长河啊" * 3  # 30 chars, one 10-char unit repeated
    assert filters.duplicate_ngram_char_fraction(text) == 1.0
    assert filters.duplicate_ngram_char_fraction("甲乙丙丁戊己庚辛壬癸子丑寅卯辰巳午未申酉戌亥") == 0.0
