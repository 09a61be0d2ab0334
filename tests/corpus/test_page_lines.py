"""Page-furniture line rules (page_lines.py) on hand-written lines, with the exact reasons."""

from datatrove.data import Document

from obert_lib.corpus.page_lines import PageLineRules, line_reason

PROSE = "北京是中华人民共和国的首都，也是全国的政治中心和文化中心，历史悠久，名胜古迹众多。"


def test_title_with_site_suffix():
    assert line_reason("西湖荷花进入最佳观赏期_旅游频道_某某网") == "title_with_site_suffix"
    assert line_reason("长江流域今年汛期提前 | 新闻中心 | 某某日报") == "title_with_site_suffix"
    assert line_reason("西湖荷花进入最佳观赏期 - 旅游 - 某某网") == "title_with_site_suffix"
    assert line_reason("西湖荷花进入最佳观赏期_某某网") is None  # one separator: could be a name like 'A_B'
    # a long part after a separator is prose, not a channel or site name
    assert line_reason("注意事项_出行前请查看天气预报并准备好雨具以防万一_谢谢") is None


def test_byline():
    assert line_reason("发稿时间：2017-03-10 08:42:00") == "byline"
    assert line_reason("2017年3月10日 09:58 来源：某某晚报") == "byline"
    assert line_reason("2016/12/24 上午") == "byline"
    assert line_reason("2017年3月10日，国务院召开常务会议，研究部署进一步促进就业的措施。") is None  # a sentence
    assert line_reason("会议于2017-03-10在北京召开，来自全国各地的代表共三千余人参加了开幕式") is None  # 30 CJK


def test_truncated_teaser():
    assert line_reason("江苏最大规模作弊案27人获刑涉案考生达50...") == "truncated_teaser"
    assert line_reason("女性养生：女人最易老的身体…") == "truncated_teaser"
    assert line_reason("三位大叔同行准备走著这段遥远的路段下次再来了.......") is None  # prose trailing off
    assert line_reason("这哩澎湃哩...哇！真好吃...") is None  # a sentence end: prose
    assert line_reason("这是一个很长的句子，作者写到一半" + "没有写完就停下来了，" * 3 + "...") is None  # > 40 chars


def test_rights_notice():
    long_notice = (
        "凡本网注明来源为本网的所有作品，版权均属于本网，未经本网书面授权，任何单位及个人不得转载、摘编或以其它"
        "方式使用上述作品；已经本网授权使用作品的，应在授权范围内使用，并注明来源，违反上述声明者，本网将追究其"
        "相关法律责任。"
    )
    assert len(long_notice) > 80  # longer than filters.py's boilerplate rule judges
    assert line_reason(long_notice) == "rights_notice"
    assert line_reason("（创作图文版权所有 未经授权同意均属违反著作权法 盗用必究）") == "rights_notice"
    # an article reporting on copyright, without the prohibition's wording
    assert line_reason("法院认为，被告未经授权转载原告的文章，构成对其信息网络传播权的侵害，判决赔偿损失。") is None


def test_prose_and_step_counts():
    assert line_reason(PROSE) is None
    step = PageLineRules()
    text = "\n".join(["新闻标题_国内_某某网", "发稿时间：2017-03-10 08:42", PROSE, "相关新闻标题被截断了..."])
    (doc,) = list(step.run([Document(text=text, id="d")]))
    assert doc.text == PROSE
    stats = {k: v.total for k, v in step.stats.stats.items() if k.startswith("line_")}
    assert stats == {
        "line_removed_title_with_site_suffix": 1,
        "line_removed_byline": 1,
        "line_removed_truncated_teaser": 1,
    }
