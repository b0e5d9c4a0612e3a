import zipfile

import pytest

from llmrec.data import load_dataset
from llmrec.data.loaders.movielens import load_ml_1m, load_ml_100k, load_ml_csv
from llmrec.errors import DataError
from tests.conftest import write_ml1m_zip


def test_ml1m_zip_and_directory_give_the_same_schema(tmp_path):
    ratings = [(1, 10, 5, 100), (1, 20, 2, 90), (2, 10, 3, 50)]
    movies = [(10, "Amélie (2001)", "Comedy|Romance"), (20, "Heat (1995)", "Action")]
    z = write_ml1m_zip(tmp_path / "ml-1m.zip", ratings, movies)
    data = load_ml_1m(z)
    assert list(data.interactions.columns[:4]) == ["user", "item", "rating", "timestamp"]
    assert data.interactions["user"].tolist() == ["1", "1", "2"]
    assert data.interactions["rating"].dtype == "float32"
    assert data.items.set_index("item").loc["10", "title"] == "Amélie (2001)"  # latin-1 decoded
    assert data.items.set_index("item").loc["10", "genres"] == "Comedy, Romance"
    assert set(data.users.columns) == {"user", "gender", "age", "occupation", "zip"}
    assert data.users.set_index("user").loc["1", "gender"] == "female"
    assert data.users.set_index("user").loc["1", "occupation"] == "programmer"
    # the same files unpacked in a folder
    with zipfile.ZipFile(z) as f:
        f.extractall(tmp_path / "unpacked")
    again = load_ml_1m(tmp_path / "unpacked")
    assert again.interactions.equals(data.interactions)
    # chronology sorts by time within a user, keeping file order on ties
    assert data.chronological()["item"].tolist() == ["20", "10", "10"]


def test_ml1m_unknown_item_names_file_and_field(tmp_path):
    z = write_ml1m_zip(tmp_path / "ml-1m.zip", [(1, 10, 5, 1), (1, 99, 4, 2)], movies=[(10, "A (1990)", "Drama")])
    with pytest.raises(DataError) as exc:
        load_ml_1m(z)
    msg = str(exc.value)
    assert "ratings.dat" in msg and "'item'" in msg and "'99'" in msg


def test_ml1m_wrong_separator(tmp_path):
    with zipfile.ZipFile(tmp_path / "ml-1m.zip", "w") as z:
        z.writestr("ml-1m/ratings.dat", "1,10,5,100\n")
        z.writestr("ml-1m/movies.dat", "10::A::Drama\n")
        z.writestr("ml-1m/users.dat", "1::F::1::10::48067\n")
    with pytest.raises(DataError, match=r"ratings\.dat.*separat"):
        load_ml_1m(tmp_path / "ml-1m.zip")


def test_ml1m_non_numeric_rating_names_line(tmp_path):
    z = write_ml1m_zip(tmp_path / "ml-1m.zip", [(1, 10, 5, 1), (1, 10, "x", 2)])
    with pytest.raises(DataError, match=r"ratings\.dat:2.*'rating'"):
        load_ml_1m(z)


def test_missing_file_and_missing_member(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_ml_1m(tmp_path / "nope.zip")
    with zipfile.ZipFile(tmp_path / "ml-1m.zip", "w") as z:
        z.writestr("ml-1m/ratings.dat", "1::10::5::100\n")
    with pytest.raises(DataError, match=r"movies\.dat not found"):
        load_ml_1m(tmp_path / "ml-1m.zip")


def test_ml100k_format(tmp_path):
    genre_flags = "|".join(["0", "1"] + ["0"] * 17)  # Action
    with zipfile.ZipFile(tmp_path / "ml-100k.zip", "w") as z:
        z.writestr("ml-100k/u.data", "1\t1\t4\t881250949\n2\t1\t2\t881250950\n1\t2\t5\t881250951\n")
        z.writestr(
            "ml-100k/u.item",
            f"1|Toy Story (1995)|01-Jan-1995||http://x|{genre_flags}\n2|Les Misérables (1995)|01-Jan-1995||http://y|{genre_flags}\n".encode("latin-1"),
        )
        z.writestr("ml-100k/u.user", "1|24|M|technician|85711\n2|53|F|other|94043\n")
    data = load_ml_100k(tmp_path / "ml-100k.zip")
    assert len(data.interactions) == 3
    items = data.items.set_index("item")
    assert items.loc["2", "title"] == "Les Misérables (1995)"
    assert items.loc["1", "genres"] == "Action"
    assert data.users.set_index("user").loc["2", "gender"] == "female"


def test_ml_csv_with_tags(tmp_path):
    d = tmp_path / "ml-latest-small"
    d.mkdir()
    (d / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4.5,964982703\n1,3,2.0,964981247\n")
    (d / "movies.csv").write_text('movieId,title,genres\n1,"Toy Story, The (1995)",Adventure|Animation\n3,Heat (1995),(no genres listed)\n')
    (d / "tags.csv").write_text("userId,movieId,tag,timestamp\n1,1,Pixar,1\n2,1,pixar,2\n2,1,fun,3\n")
    data = load_ml_csv(d, "ml-latest-small")
    items = data.items.set_index("item")
    assert items.loc["1", "title"] == "Toy Story, The (1995)"
    assert items.loc["1", "tags"] == "pixar, fun"
    assert items.loc["3", "genres"] == ""
    assert data.interactions["rating"].tolist() == [4.5, 2.0]


def test_ml_csv_missing_column(tmp_path):
    d = tmp_path / "ml"
    d.mkdir()
    (d / "ratings.csv").write_text("userId,movieId,score,timestamp\n1,1,4.5,9\n")
    (d / "movies.csv").write_text("movieId,title,genres\n1,A,Drama\n")
    with pytest.raises(DataError, match=r"ratings\.csv.*'rating'"):
        load_ml_csv(d)


@pytest.mark.shared_data
def test_real_ml1m_and_ml100k(shared_data):
    data = load_dataset("ml-1m", data_root=shared_data)
    s = data.summary()
    assert (s["interactions"], s["users"], s["items"], s["catalog_items"]) == (1_000_209, 6_040, 3_706, 3_883)
    small = load_dataset("ml-100k", data_root=shared_data)
    assert (len(small.interactions), small.summary()["users"], len(small.items)) == (100_000, 943, 1_682)
    latest = load_dataset("ml-latest-small", data_root=shared_data)
    assert (len(latest.interactions), latest.summary()["users"]) == (100_836, 610)
